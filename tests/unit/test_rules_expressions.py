"""The rules expression language: every operator, method and literal, and errors -> false."""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere.localdb.rules import Rules

TREE: dict[str, Any] = {
    "users": {"alice": {"name": "Alice", "age": 30, "admin": True, "score": 2.5}},
    "admins": {"alice": True},
}
AUTH: dict[str, Any] = {"uid": "alice", "token": {"admin": True, "email": "a@example.com"}}


def holds(expression: str, auth: dict[str, Any] | None = AUTH, after: Any = TREE) -> bool:
    """Evaluate `expression` as the .write rule of /users/$uid for a write to /users/alice."""
    rules = Rules.from_json({"rules": {"users": {"$uid": {".write": expression}}}})
    return rules.can_write(["users", "alice"], auth, TREE, after)


TRUE_EXPRESSIONS = [
    # literals and equality
    "true",
    "!false",
    "null == null",
    "1 == 1",
    "1 === 1.0",
    "'a' == \"a\"",
    "'a' != 'b'",
    "1 !== '1'",
    "1e3 == 1000",
    "0.5 == 1 / 2",
    "'it\\'s' == \"it's\"",
    "'\\u0041\\x42\\n' == 'AB\\n'",
    # comparisons
    "2 > 1",
    "2 >= 2",
    "1 < 2",
    "1 <= 1",
    "'a' < 'b'",
    "'b' >= 'a'",
    # arithmetic and concatenation
    "1 + 2 == 3",
    "'a' + 'b' == 'ab'",
    "'n' + 1 == 'n1'",
    "2.0 + 'x' == '2x'",
    "7 - 2 == 5",
    "2 * 3 == 6",
    "7 / 2 == 3.5",
    "4 / 2 == 2",
    "(4) / 2 == 2",
    "7 % 3 == 1",
    "-7 % 3 == -1",
    "-(1) == -1",
    "- -1 == 1",
    # precedence, grouping, logic, ternary
    "1 + 2 * 3 == 7",
    "(1 + 2) * 3 == 9",
    "true || false && false",
    "!(1 == 2)",
    "false || true",
    "true && true",
    "true ? true : false",
    "false ? false : true",
    "1 > 2 ? false : 2 > 1 ? true : false",
    # variables
    "$uid == 'alice'",
    "$uid === auth.uid",
    "now > 1600000000000",
    "now < 100000000000000",  # milliseconds, not microseconds
    "auth != null",
    "auth.uid == 'alice'",
    "auth.token.admin == true",
    "auth.token.missing == null",
    "auth['uid'] == 'alice'",
    "auth.token['email'].endsWith('@example.com')",
    # snapshots
    "data.exists()",
    "data.child('name').val() == 'Alice'",
    "data.child('name').isString()",
    "data.child('age').isNumber()",
    "data.child('score').isNumber()",
    "data.child('admin').isBoolean()",
    "!data.child('admin').isNumber()",
    "!data.child('name').isNumber()",
    "!data.child('nope').exists()",
    "data.child('nope').val() == null",
    "data.child('nope').child('deeper').val() == null",
    "data.hasChild('name')",
    "!data.hasChild('nope')",
    "data.hasChildren()",
    "data.hasChildren(['name', 'age'])",
    "!data.hasChildren(['name', 'zzz'])",
    "!data.child('name').hasChildren()",
    "!data.child('name').hasChildren(['x'])",
    "data.parent().child('alice/name').val() == 'Alice'",
    "data.parent().parent().child('admins').exists()",
    "data.getPriority() == null",
    "data.val() != null",
    "data.child('age').val() + 1 == 31",
    "root.child('admins').child(auth.uid).exists()",
    "root.child('admins/' + $uid).val() === true",
    "root.hasChild('users/alice/name')",
    "newData.child('name').val() == 'Alice'",
    # strings
    "data.child('name').val().length == 5",
    "data.child('name').val().contains('lic')",
    "data.child('name').val().beginsWith('Al')",
    "data.child('name').val().endsWith('ce')",
    "data.child('name').val().matches(/^Al.*e$/)",
    "data.child('name').val().matches(/lic/)",
    "data.child('name').val().matches(/^al/i)",
    "!data.child('name').val().matches(/^al/)",
    "data.child('name').val().toLowerCase() == 'alice'",
    "data.child('name').val().toUpperCase() == 'ALICE'",
    "data.child('name').val().replace('A', 'a') == 'alice'",
    "'a.b.c'.replace('.', '/') == 'a/b/c'",
    "'2024-01-01'.matches(/^\\d{4}-\\d{2}-\\d{2}$/)",
    "'a/b'.matches(/^a\\/b$/)",
    "'a/b'.matches(/[/]/)",
]


@pytest.mark.parametrize("expression", TRUE_EXPRESSIONS)
def test_expression_is_true(expression: str) -> None:
    assert holds(expression)


FALSE_EXPRESSIONS = [
    "false",
    "1 == 2",
    "1 == '1'",
    "true == 1",
    "0 == false",
    "'' == null",
    "'b' < 'a'",
    "auth == null",
    "$uid == 'bob'",
    "!data.exists()",
    "data.child('name').val() == 'alice'",
    "data.val() == newData.val()",  # val() of a parent node is an opaque sentinel
    "true ? false : true",
]


@pytest.mark.parametrize("expression", FALSE_EXPRESSIONS)
def test_expression_is_false(expression: str) -> None:
    assert not holds(expression)


ERROR_EXPRESSIONS = [
    "1 < 'a'",
    "null < 1",
    "true > false",
    "auth.nope.deeper == 1",
    "data.val().length > 0",
    "data.child('age').val().length == 2",
    "'a' - 1 == 0",
    "true + 1 == 2",
    "null + 'a' == 'a'",
    "1 / 0 == 0",
    "1 % 0 == 0",
    "-'a' == 'a'",
    "1 && true",
    "true && 1",
    "!1",
    "1 ? true : true",
    "data.child('nope').val().contains('x')",
    "data.parent().parent().parent().exists()",
    "data.child('').exists()",
    "data.child('/').exists()",
    "data.child(1).exists()",
    "'abc'.matches('abc')",
    "'abc'.contains(1)",
    "data.hasChildren('name')",
    "data.hasChildren([1])",
    "query.orderByChild == 'x'",
    "'a'.exists()",
    "data.toLowerCase() == 'x'",
    "auth.uid.val() == 'alice'",
    "data.length == 1",
    "auth[1] == null",
    "1",
    "'true'",
    "data.child('name').val()",
    "null",
]


@pytest.mark.parametrize("expression", ERROR_EXPRESSIONS)
def test_errors_and_non_boolean_results_evaluate_to_false(expression: str) -> None:
    assert not holds(expression)


@pytest.mark.parametrize("expression", ERROR_EXPRESSIONS)
def test_an_error_fails_its_whole_rule_but_not_other_rules(expression: str) -> None:
    assert not holds(f"({expression}) || true")
    rules = Rules.from_json(
        {"rules": {".write": expression, "users": {"$uid": {".write": "true"}}}}
    )
    assert rules.can_write(["users", "alice"], AUTH, TREE, TREE)


def test_and_or_short_circuit_so_null_auth_does_not_error() -> None:
    assert not holds("auth != null && auth.uid == 'alice'", auth=None)
    assert holds("auth == null || auth.uid == 'bob'", auth=None)
    assert holds("auth != null && auth.uid == 'alice'")
    assert not holds("auth.uid == 'alice'", auth=None)  # member of null: error, so false


def test_ternary_only_evaluates_the_chosen_branch() -> None:
    assert holds("auth == null ? true : auth.uid == 'alice'", auth=None)
    assert holds("auth != null ? auth.uid == 'alice' : false")


def test_new_data_sees_the_tree_after_the_write() -> None:
    after = {"users": {"alice": {"name": "Alicia"}}, "admins": {"alice": True}}
    assert holds("newData.child('name').val() == 'Alicia' && !newData.hasChild('age')", after=after)
    assert holds("data.child('name').val() == 'Alice' && data.hasChild('age')", after=after)
    assert holds("root.child('users/alice/name').val() == 'Alice'", after=after)


def test_new_data_is_unavailable_in_read_rules() -> None:
    rules = Rules.from_json({"rules": {".read": "newData.exists() || true"}})
    assert not rules.can_read([], AUTH, TREE)
    assert Rules.from_json({"rules": {".read": "data.exists()"}}).can_read([], AUTH, TREE)


def test_whole_database_snapshots_work_on_an_empty_database() -> None:
    rules = Rules.from_json({"rules": {".write": "!data.exists() && !root.exists()"}})
    assert rules.can_write(["a"], AUTH, None, {"a": 1})
    assert not rules.can_write(["a"], AUTH, {"b": 2}, {"a": 1, "b": 2})
