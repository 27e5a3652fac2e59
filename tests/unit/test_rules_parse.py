"""Rules.parse: comments, error messages with positions, rule keys, to_json and index_on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.localdb.rules import Rules, RulesError
from atmosphere.localdb.rules.jsonc import load_jsonc

COMMENTED = """// Rules for the test app
{
  /* the whole
     database */
  "rules": {
    ".read": "auth != null", // signed-in users read
    "links": {
      ".write": "newData.val() == 'http://example.com/*x*/'"  /* a URL, not a comment */
    }
  }
}
"""


def parse_error(text: str) -> str:
    with pytest.raises(RulesError) as info:
        Rules.parse(text)
    return str(info.value)


def test_comments_are_ignored_but_not_inside_strings() -> None:
    rules = Rules.parse(COMMENTED)
    assert rules.to_json() == {
        "rules": {
            ".read": "auth != null",
            "links": {".write": "newData.val() == 'http://example.com/*x*/'"},
        }
    }
    after = {"links": "http://example.com/*x*/"}
    assert rules.can_write(["links"], None, None, after)


def test_to_json_is_strict_json_and_a_copy() -> None:
    rules = Rules.parse(COMMENTED)
    document = rules.to_json()
    document["rules"]["extra"] = {}
    assert json.loads(json.dumps(rules.to_json())) == rules.to_json()
    assert "extra" not in rules.to_json()["rules"]


def test_bad_json_reports_line_and_column() -> None:
    message = parse_error('{\n  "rules": {\n    ".read": tru\n  }\n}')
    assert "line 3 column 14" in message


def test_line_numbers_count_lines_inside_block_comments() -> None:
    message = parse_error('/*\n\n*/ {"rules": {".read": }}')
    assert "line 3" in message


def test_unterminated_comment_is_reported_with_position() -> None:
    assert "line 2 column 3" in parse_error('{"rules": {}}\n  /* never closed')


def test_duplicate_keys_are_rejected() -> None:
    assert "duplicate key '.read'" in parse_error('{"rules": {".read": true, ".read": false}}')


@pytest.mark.parametrize(
    "document",
    [
        "[]",
        '{"rules": {}, "other": 1}',
        '{"notrules": {}}',
        '{"rules": true}',
    ],
)
def test_top_level_must_be_a_single_rules_object(document: str) -> None:
    parse_error(document)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({".value": True}, "rules/.value: unknown rule key '.value'"),
        ({"a": {".priority": True}}, "rules/a/.priority: unknown rule key"),
        ({"a": {".read": 1}}, "rules/a/.read: expected a boolean or an expression string"),
        ({"a": {".indexOn": 3}}, "rules/a/.indexOn: expected a field name"),
        ({"a": {".indexOn": ["x", 2]}}, "rules/a/.indexOn"),
        ({"a": True}, "rules/a: expected an object of rules, got a boolean"),
        ({"$a": {}, "$b": {}}, "second wildcard"),
        ({"a/b": {}}, "invalid child key 'a/b'"),
        ({"$": {}}, "invalid wildcard name"),
        ({"$a": {"x": {"$a": {}}}}, "rules/$a/x/$a: wildcard $a is already bound above"),
    ],
)
def test_structure_errors_name_the_rule_path(rules: dict[str, Any], expected: str) -> None:
    assert expected in parse_error(json.dumps({"rules": rules}))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("auth.uid ===", "unexpected end of expression at column 13"),
        ("auth.uid == 'x", "unterminated string at column 13"),
        ("(auth != null", "expected ')' but found end of expression at column 14"),
        ("auth != null)", "expected end of expression but found ')' at column 13"),
        ("auth # 1", "unexpected character '#' at column 6"),
        ("$uid == 'a'", "unknown variable $uid (no such wildcard above this rule) at column 1"),
        ("user.uid == 'a'", "unknown name 'user' at column 1"),
        ("data.frobnicate()", "unknown method frobnicate() at column 6"),
        ("data.child()", "wrong number of arguments to child() at column 6"),
        ("data.val(1)", "wrong number of arguments to val()"),
        ("newData.val().matches(/(/)", "bad regular expression"),
        ("newData.val().matches(/a/g)", "unsupported regular expression flags 'g'"),
        ("newData.val().matches(/a", "unterminated regular expression"),
        ("data.", "expected a property or method name"),
        ("'\\u12' == 'x'", "bad \\u escape"),
        ("isString()", "unknown name 'isString'"),
    ],
)
def test_expression_errors_name_rule_path_and_column(expression: str, expected: str) -> None:
    message = parse_error(json.dumps({"rules": {"a": {".write": expression}}}))
    assert message.startswith("rules/a/.write: ")
    assert expected in message


def test_wildcard_variables_are_in_scope_below_their_wildcard() -> None:
    rules = {"rooms": {"$room": {"members": {"$uid": {".write": "$room != $uid"}}}}}
    Rules.parse(json.dumps({"rules": rules}))
    outside = {"rooms": {"$room": {}, ".write": "$room == 'x'"}}
    assert "unknown variable $room" in parse_error(json.dumps({"rules": outside}))


def test_multiline_expression_strings_are_accepted() -> None:
    text = '{"rules": {".read": "auth != null &&\n auth.uid == \'a\'"}}'
    assert Rules.parse(text).can_read([], {"uid": "a"}, None)


def test_allow_all_and_deny_all() -> None:
    assert Rules.allow_all().can_read(["a", "b"], None, None)
    assert Rules.allow_all().can_write(["a"], None, None, {"a": 1})
    assert not Rules.deny_all().can_read([], {"uid": "x"}, None)
    assert not Rules.deny_all().can_write(["a"], {"uid": "x"}, None, {"a": 1})
    assert Rules.allow_all().to_json() == {"rules": {".read": True, ".write": True}}


def test_index_on_accepts_a_string_or_a_list_and_follows_wildcards() -> None:
    rules = Rules.parse(
        json.dumps(
            {
                "rules": {
                    "dinosaurs": {".indexOn": ["height", "length"]},
                    "queue": {"$type": {".indexOn": "priority"}, "special": {".read": True}},
                }
            }
        )
    )
    assert rules.index_on(["dinosaurs"]) == ["height", "length"]
    assert rules.index_on(["queue", "email"]) == ["priority"]
    assert rules.index_on(["queue", "special"]) == []  # named child wins over the wildcard
    assert rules.index_on(["queue"]) == []
    assert rules.index_on(["nowhere", "deep"]) == []
    assert rules.index_on([]) == []


json_scalars = st.booleans() | st.integers() | st.text(alphabet="ab/*\\\"' \n")
json_documents = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet="xy/*", max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_documents)
def test_comments_after_every_line_never_change_the_value(document: Any) -> None:
    lines = json.dumps(document, indent=1).splitlines()
    commented = "/* head */\n" + "\n".join(f"{line} // tail /* x" for line in lines)
    assert load_jsonc(commented) == document
