"""What the database would refuse, checked before writing (pure), and checked against the
embedded server itself: the validator and the server agree on every value."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atmosphere import InvalidJob
from atmosphere.db.client import encode_json
from atmosphere.errors import DatabaseError
from atmosphere.localdb.service import LocalDb, Response
from atmosphere.storable import (
    MAX_VALUE_BYTES,
    check_value,
    depth_of,
    value_problem,
)

OWNER = {b"authorization": b"Bearer owner"}


def nested(levels: int, leaf: Any = 1) -> Any:
    """``{"a": {"a": ... leaf}}``, ``levels`` objects deep."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def problem(value: Any, depth: int = 5, max_bytes: int = 1_000_000) -> str | None:
    return value_problem(value, "result", depth=depth, max_bytes=max_bytes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ({"a": [1, None, {"b": "c"}], "d": 1.5, "e": True, "f": 2**70}, None),
        ((1, {"a": (2, 3)}), None),  # tuples are arrays
        ({}, None),
        (nested(27), None),  # 5 + 27 = 32 levels: the most the database takes
        (nested(28), "result is nested 28 levels deep (at result.a.a.a.a.a.a...)"),
        (nested(40), "nested 40 levels deep"),
        (nested(26, []), None),
        (nested(27, []), "nested 28 levels deep"),  # an empty object is a level too
        ({"a.b": 1}, "key in result 'a.b' contains '.'"),
        ({"x": {"ok": [{"$k": 1}]}}, "key in result.x.ok.0 '$k' contains '$'"),
        ({"": 1}, "key in result must be a non-empty string"),
        ({1: 2}, "key in result must be a non-empty string, got 1"),
        ({"k" * 769: 1}, "longer than 768 bytes"),
        ({"\ud800": 1}, "'\\ud800' is not valid UTF-8"),
        ({"k": ["ok", "\udc80"]}, "not valid UTF-8 at result.k.1"),
        ({"a": [1, {"b": math.nan}]}, "not JSON-serialisable: result.a.1.b is nan"),
        ({"a": math.inf}, "result.a is inf"),
        ({1, 2}, "not JSON-serialisable: result is a set"),
        ({"when": object()}, "result.when is a object"),
        ("x" * 11_000_000, "a string of 11000000 bytes at result; the database stores"),
    ],
)
def test_value_problem(value: Any, expected: str | None) -> None:
    found = problem(value, max_bytes=100_000_000)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


def test_nesting_counts_from_the_database_root() -> None:
    assert problem(nested(30), depth=2) is None
    found = problem(nested(31), depth=2)
    assert found and "written 2 levels below the database root, it may nest 30" in found
    assert problem(1, depth=40) is None  # a plain value adds no level


def test_size_is_the_callers_limit_capped_so_one_write_holds_every_copy() -> None:
    assert problem("x" * 98, max_bytes=100) is None  # 100 bytes with its quotes
    assert problem("x" * 99, max_bytes=100) == "result is 101 bytes, over the 100-byte limit"
    found = problem("x" * MAX_VALUE_BYTES, max_bytes=10 * MAX_VALUE_BYTES)
    assert found and f"over the {MAX_VALUE_BYTES}-byte limit (one write carries" in found


def test_a_value_that_holds_itself_ends() -> None:
    loop: list[Any] = []
    loop.extend([loop, loop])
    found = problem(loop)
    assert found and "levels deep" in found


def test_check_value_raises_invalid_job() -> None:
    with pytest.raises(InvalidJob, match="key in job data 'a/b' contains '/'"):
        check_value({"a/b": 1}, "job data", depth=6, max_bytes=100)
    check_value({"a": 1}, "job data", depth=6, max_bytes=100)


def test_depth_of() -> None:
    assert depth_of("atmosphere/live/outcomes/j1/result") == 5
    assert depth_of("/a//b/") == 2


# -- the same answer as the embedded server ------------------------------------------------

# The server gives these keys a meaning (priority, server values) instead of storing them as
# they are, so the validator refuses them on purpose; they are left out of the comparison.
_SPECIAL = {".priority", ".value", ".sv"}
keys = st.one_of(
    st.text(st.sampled_from("ab.$#[]/\x00\x7f é\ud800"), max_size=4),
    st.sampled_from(["k" * 768, "k" * 769, "é" * 384, "é" * 385]),
).filter(lambda k: k not in _SPECIAL)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included
    st.text(st.sampled_from("ab é\ud800\x00"), max_size=4),
)
shallow = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)


def _server_takes(server: LocalDb, depth: int, value: Any) -> bool:
    try:
        body = encode_json({"/".join(["p"] * depth): value})
    except DatabaseError:  # not JSON at all (NaN): the client refuses it before sending
        return False
    answer = server.handle("PATCH", b"/.json", b"ns=storable&print=silent", OWNER, body)
    assert isinstance(answer, Response) and answer.status in (204, 400), answer
    return answer.status == 204


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 33), wrap=st.integers(0, 34), inner=shallow)
def test_the_validator_and_the_server_agree(
    localdb: LocalDb, depth: int, wrap: int, inner: Any
) -> None:
    value = nested(wrap, inner)
    accepted = problem(value, depth=depth) is None
    assert accepted == _server_takes(localdb, depth, value), (depth, value)
