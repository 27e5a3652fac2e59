"""Rules.can_read / can_write: cascading .read/.write, wildcards, and .validate semantics."""

from __future__ import annotations

from typing import Any

from atmosphere.localdb.rules import Rules

ALICE = {"uid": "alice"}
BOB = {"uid": "bob"}


def rules_of(tree: dict[str, Any]) -> Rules:
    return Rules.from_json({"rules": tree})


# -- .read / .write cascade ---------------------------------------------------------------------


def test_no_rules_deny_everything() -> None:
    rules = rules_of({})
    assert not rules.can_read([], ALICE, None)
    assert not rules.can_read(["a", "b"], ALICE, {"a": {"b": 1}})
    assert not rules.can_write(["a"], ALICE, None, {"a": 1})


def test_a_shallow_grant_cannot_be_revoked_deeper() -> None:
    rules = rules_of(
        {"foo": {".read": True, ".write": True, "bar": {".read": False, ".write": False}}}
    )
    assert rules.can_read(["foo", "bar"], None, None)
    assert rules.can_read(["foo", "bar", "baz", "deep"], None, None)
    assert rules.can_write(["foo", "bar"], None, None, {"foo": {"bar": 1}})


def test_a_deep_grant_does_not_open_the_parent() -> None:
    rules = rules_of({"records": {"rec1": {".read": True}, "rec2": {".read": False}}})
    assert rules.can_read(["records", "rec1"], None, None)
    assert rules.can_read(["records", "rec1", "field"], None, None)
    assert not rules.can_read(["records"], None, None)
    assert not rules.can_read(["records", "rec2"], None, None)
    assert not rules.can_read([], None, None)


def test_write_needs_a_grant_at_or_above_the_location() -> None:
    rules = rules_of({"a": {"b": {".write": True}}})
    after = {"a": {"b": {"c": 1}}}
    assert rules.can_write(["a", "b"], None, None, after)
    assert rules.can_write(["a", "b", "c"], None, None, after)
    assert not rules.can_write(["a"], None, None, after)
    assert not rules.can_write([], None, None, after)


def test_any_rule_on_the_way_grants() -> None:
    rules = rules_of({".read": "auth.uid == 'root'", "a": {".read": "auth.uid == 'alice'"}})
    assert rules.can_read(["a", "x"], {"uid": "root"}, None)
    assert rules.can_read(["a", "x"], ALICE, None)
    assert not rules.can_read(["a", "x"], BOB, None)
    assert not rules.can_read([], ALICE, None)


def test_auth_null_versus_an_auth_object() -> None:
    rules = rules_of({".read": "auth != null", ".write": "auth != null"})
    assert rules.can_read(["x"], ALICE, None)
    assert rules.can_read(["x"], {}, None)
    assert not rules.can_read(["x"], None, None)
    assert not rules.can_write(["x"], None, None, {"x": 1})
    assert rules.can_write(["x"], ALICE, None, {"x": 1})


def test_read_rules_see_the_data_at_their_own_location() -> None:
    rules = rules_of({"messages": {"$id": {".read": "data.child('public').val() == true"}}})
    root = {"messages": {"m1": {"public": True, "text": "hi"}, "m2": {"text": "secret"}}}
    assert rules.can_read(["messages", "m1"], None, root)
    assert rules.can_read(["messages", "m1", "text"], None, root)
    assert not rules.can_read(["messages", "m2"], None, root)
    assert not rules.can_read(["messages", "m3"], None, root)


# -- wildcards -----------------------------------------------------------------------------------


def test_user_owns_their_node() -> None:
    rules = rules_of(
        {"users": {"$uid": {".read": "$uid === auth.uid", ".write": "$uid === auth.uid"}}}
    )
    after = {"users": {"alice": {"name": "A"}}}
    assert rules.can_write(["users", "alice"], ALICE, None, after)
    assert rules.can_write(["users", "alice", "name"], ALICE, None, after)
    assert not rules.can_write(["users", "alice"], BOB, None, after)
    assert not rules.can_write(["users", "alice"], None, None, after)
    assert not rules.can_write(["users"], ALICE, None, after)
    assert rules.can_read(["users", "alice", "name"], ALICE, after)
    assert not rules.can_read(["users", "alice"], BOB, after)


def test_variables_from_several_wildcards() -> None:
    rules = rules_of(
        {
            "rooms": {
                "$room": {
                    "members": {
                        "$uid": {".write": "$uid === auth.uid && $room.beginsWith('public-')"}
                    }
                }
            }
        }
    )
    assert rules.can_write(["rooms", "public-1", "members", "alice"], ALICE, None, None)
    assert not rules.can_write(["rooms", "private-1", "members", "alice"], ALICE, None, None)
    assert not rules.can_write(["rooms", "public-1", "members", "bob"], ALICE, None, None)


def test_a_named_child_takes_precedence_over_the_wildcard() -> None:
    rules = rules_of({"items": {"$item": {".read": True}, "secret": {".write": True}}})
    assert rules.can_read(["items", "anything"], None, None)
    assert not rules.can_read(["items", "secret"], None, None)
    assert not rules.can_read(["items", "secret", "deeper"], None, None)
    assert rules.can_write(["items", "secret"], None, None, {"items": {"secret": 1}})
    assert not rules.can_write(["items", "other"], None, None, {"items": {"other": 1}})


def test_a_wildcard_variable_can_be_rebound_deeper() -> None:
    rules = rules_of({"$id": {"$id2": {".read": "$id == 'a' && $id2 == 'b'"}}})
    assert rules.can_read(["a", "b"], None, None)
    assert not rules.can_read(["b", "a"], None, None)


# -- the typical Firebase examples ---------------------------------------------------------------


def test_string_shorter_than_100() -> None:
    rules = rules_of(
        {"foo": {".write": True, ".validate": "newData.isString() && newData.val().length < 100"}}
    )
    assert rules.can_write(["foo"], None, None, {"foo": "short"})
    assert not rules.can_write(["foo"], None, None, {"foo": "x" * 100})
    assert not rules.can_write(["foo"], None, None, {"foo": 5})
    assert not rules.can_write(["foo"], None, None, {"foo": {"a": "b"}})


def test_admins_listed_in_the_database() -> None:
    rules = rules_of({"config": {".write": "root.child('admins').child(auth.uid).exists()"}})
    before = {"admins": {"alice": True}}
    after = {"admins": {"alice": True}, "config": {"x": 1}}
    assert rules.can_write(["config"], ALICE, before, after)
    assert not rules.can_write(["config"], BOB, before, after)
    assert not rules.can_write(["config"], None, before, after)  # auth.uid on null: false
    # root is the data before the write: making yourself admin in the same write does not count
    assert not rules.can_write([], BOB, before, {"admins": {"bob": True}, "config": {"x": 1}})


def test_create_only_and_delete_only() -> None:
    rules = rules_of(
        {
            "create": {"$id": {".write": "!data.exists()"}},
            "delete": {"$id": {".write": "data.exists() && !newData.exists()"}},
        }
    )
    before = {"create": {"old": 1}, "delete": {"old": 1}}
    assert rules.can_write(
        ["create", "new"], None, before, {**before, "create": {"old": 1, "new": 2}}
    )
    assert not rules.can_write(["create", "old"], None, before, {**before, "create": {"old": 2}})
    assert rules.can_write(["delete", "old"], None, before, {"create": {"old": 1}})
    assert not rules.can_write(["delete", "old"], None, before, {**before, "delete": {"old": 2}})


# -- .validate -----------------------------------------------------------------------------------

WIDGET_RULES = {
    ".write": True,
    "widget": {
        ".validate": "newData.hasChildren(['color', 'size'])",
        "size": {".validate": "newData.isNumber() && newData.val() >= 0 && newData.val() <= 99"},
        "color": {".validate": "root.child('valid_colors/' + newData.val()).exists()"},
    },
}
COLORS = {"valid_colors": {"blue": True, "red": True}}


def write_widget(path: list[str], before: dict[str, Any], after: dict[str, Any]) -> bool:
    return rules_of(WIDGET_RULES).can_write(path, None, before, after)


def test_validate_checks_every_written_child() -> None:
    assert write_widget(["widget"], COLORS, {**COLORS, "widget": {"size": 21, "color": "blue"}})
    assert not write_widget(
        ["widget"], COLORS, {**COLORS, "widget": {"size": "foo", "color": "red"}}
    )
    assert not write_widget(["widget"], COLORS, {**COLORS, "widget": {"size": 22}})
    assert not write_widget(["widget"], COLORS, {**COLORS, "widget": "foo"})
    assert not write_widget(["widget"], COLORS, {**COLORS, "widget": {"size": 1, "color": "green"}})


def test_validate_rules_of_ancestors_see_the_merged_new_data() -> None:
    with_color = {**COLORS, "widget": {"color": "blue", "size": 1}}
    assert write_widget(
        ["widget", "size"], with_color, {**COLORS, "widget": {"color": "blue", "size": 99}}
    )
    without_color = {**COLORS, "widget": {"size": 1}}
    assert not write_widget(["widget", "size"], without_color, {**COLORS, "widget": {"size": 99}})
    assert not write_widget(
        ["widget", "size"], with_color, {**COLORS, "widget": {"color": "blue", "size": 100}}
    )


def test_deleted_nodes_are_not_validated() -> None:
    rules = rules_of(
        {".write": True, "foo": {".validate": "newData.isString()"}, "bar": {".validate": False}}
    )
    before = {"foo": "x", "bar": 1}
    assert rules.can_write(["foo"], None, before, {"bar": 1})
    assert rules.can_write(["bar"], None, before, {"foo": "x"})
    assert rules.can_write([], None, before, None)
    assert not rules.can_write(["bar"], None, before, {"foo": "x", "bar": 2})


def test_deleting_a_required_child_fails_the_parent_validation() -> None:
    before = {**COLORS, "widget": {"color": "blue", "size": 1}}
    assert not write_widget(["widget", "size"], before, {**COLORS, "widget": {"color": "blue"}})
    assert write_widget(["widget"], before, COLORS)  # deleting the whole widget is fine


def test_validate_does_not_cascade() -> None:
    rules = rules_of({".write": True, "a": {".validate": "newData.hasChild('b')", "b": {"c": {}}}})
    assert rules.can_write(["a"], None, None, {"a": {"b": {"c": "anything", "d": 1}}})
    assert rules.can_write(["a", "b", "c"], None, None, {"a": {"b": {"c": 5}}})
    assert not rules.can_write(["a", "x"], None, None, {"a": {"x": 1}})


def test_validate_on_wildcard_children_of_a_multi_child_write() -> None:
    rules = rules_of(
        {
            "messages": {
                ".write": True,
                "$id": {
                    ".validate": "newData.hasChildren(['text']) && $id.beginsWith('m')",
                    "text": {".validate": "newData.isString()"},
                },
            }
        }
    )
    good = {"messages": {"m1": {"text": "hi"}, "m2": {"text": "yo", "extra": 1}}}
    assert rules.can_write(["messages"], None, None, good)
    assert not rules.can_write(
        ["messages"], None, None, {"messages": {"m1": {"text": "hi"}, "m2": {"other": 1}}}
    )
    assert not rules.can_write(["messages"], None, None, {"messages": {"m1": {"text": 5}}})
    assert not rules.can_write(["messages"], None, None, {"messages": {"x1": {"text": "hi"}}})


def test_other_wildcard_rejects_unknown_fields() -> None:
    rules = rules_of(
        {
            "profile": {
                ".write": True,
                "name": {".validate": "newData.isString()"},
                "$other": {".validate": False},
            }
        }
    )
    assert rules.can_write(["profile"], None, None, {"profile": {"name": "x"}})
    assert not rules.can_write(["profile"], None, None, {"profile": {"name": "x", "extra": 1}})
    assert not rules.can_write(["profile", "extra"], None, None, {"profile": {"extra": 1}})


def test_validate_rules_without_data_below_are_not_run() -> None:
    rules = rules_of(
        {".write": True, "a": {"b": {".validate": False}, "$w": {"c": {".validate": False}}}}
    )
    assert rules.can_write(["a"], None, None, {"a": {"x": {"d": 1}}})
    assert not rules.can_write(["a"], None, None, {"a": {"x": {"c": 1}}})
    assert not rules.can_write(["a"], None, None, {"a": {"b": 1}})


def test_validate_alone_never_grants_a_write() -> None:
    rules = rules_of({"foo": {".validate": True}})
    assert not rules.can_write(["foo"], None, None, {"foo": 1})


def test_a_failing_validate_denies_even_with_write_granted_deeper_and_higher() -> None:
    rules = rules_of({".write": True, ".validate": "newData.hasChild('ok')", "x": {".write": True}})
    assert not rules.can_write(["x"], None, None, {"x": 1})
    assert rules.can_write(["x"], None, {"ok": 1}, {"ok": 1, "x": 1})


def test_validate_errors_deny() -> None:
    rules = rules_of({".write": True, "n": {".validate": "newData.val().length > 2"}})
    assert not rules.can_write(["n"], None, None, {"n": 12345})
    assert rules.can_write(["n"], None, None, {"n": "abc"})


def test_a_multi_path_update_checks_each_path() -> None:
    rules = rules_of(
        {"a": {"b": {".write": True, ".validate": "newData.isNumber()"}, "c": {".write": True}}}
    )
    before = {"a": {"b": 1, "c": 2, "d": "untouched"}}
    after = {"a": {"b": 3, "c": "x", "d": "untouched"}}
    assert all(rules.can_write(["a", key], None, before, after) for key in ("b", "c"))
    bad = {"a": {"b": "no", "c": "x", "d": "untouched"}}
    assert not all(rules.can_write(["a", key], None, before, bad) for key in ("b", "c"))
