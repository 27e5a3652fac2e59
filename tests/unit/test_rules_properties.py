"""Property tests: allow-all rules allow any write, empty rules deny it, evaluation never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.localdb.rules import Rules

keys = st.text(alphabet="abcxyz019-_", min_size=1, max_size=6)
scalars = (
    st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
# The server's trees: no None and no empty dicts.
json_values = st.recursive(
    scalars, lambda inner: st.dictionaries(keys, inner, min_size=1, max_size=4), max_leaves=12
)
trees = st.none() | st.dictionaries(keys, json_values, min_size=1, max_size=4)
paths = st.lists(keys, max_size=5)
auths = st.none() | st.fixed_dictionaries(
    {"uid": keys}, optional={"token": st.dictionaries(keys, scalars)}
)

ALLOW = Rules.parse('{"rules": {".read": true, ".write": true}}')
EMPTY = Rules.parse('{"rules": {}}')
TYPICAL = Rules.parse(
    """{
  "rules": {
    ".read": "auth != null",
    "users": {
      "$uid": {
        ".write": "$uid === auth.uid",
        ".validate": "newData.hasChildren(['name']) || !newData.exists()",
        "name": {".validate": "newData.isString() && newData.val().length < 100"},
        "$other": {".validate": "newData.val() != null && auth.token.admin == true"}
      }
    },
    "admin": {".write": "root.child('admins').child(auth.uid).exists()"},
    "$any": {".validate": "newData.child('a').val() + 1 > 0 || data.parent().exists()"}
  }
}"""
)


def write_at(tree: Any, path: list[str], value: Any) -> Any:
    """The whole tree after setting `value` (None deletes) at `path`, pruning empty parents."""
    if not path:
        return value
    node = dict(tree) if isinstance(tree, dict) else {}
    child = write_at(node.get(path[0]), path[1:], value)
    if child is None:
        node.pop(path[0], None)
    else:
        node[path[0]] = child
    return node or None


@given(trees, paths, json_values | st.none(), auths)
def test_allow_all_allows_any_write_and_read(
    before: Any, path: list[str], value: Any, auth: dict[str, Any] | None
) -> None:
    after = write_at(before, path, value)
    assert ALLOW.can_write(path, auth, before, after)
    assert ALLOW.can_read(path, auth, after)


@given(trees, paths, json_values | st.none(), auths)
def test_empty_rules_deny_any_write_and_read(
    before: Any, path: list[str], value: Any, auth: dict[str, Any] | None
) -> None:
    after = write_at(before, path, value)
    assert not EMPTY.can_write(path, auth, before, after)
    assert not EMPTY.can_read(path, auth, after)


@given(
    trees,
    st.lists(st.sampled_from(["users", "admin", "name", "alice", "x"]), max_size=4),
    json_values | st.none(),
    auths,
)
def test_typical_rules_return_a_bool_for_any_input(
    before: Any, path: list[str], value: Any, auth: dict[str, Any] | None
) -> None:
    after = write_at(before, path, value)
    assert TYPICAL.can_write(path, auth, before, after) in (True, False)
    assert TYPICAL.can_read(path, auth, after) is (auth is not None)
