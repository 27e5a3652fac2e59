"""Unit tests of body validation, normalisation and server values (atmosphere.rtdb.values)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.rtdb.keys import is_valid_key
from atmosphere.rtdb.values import (
    MAX_DEPTH,
    InvalidData,
    ServerValue,
    add_numbers,
    normalise,
    parse_json,
    resolve,
)


@pytest.mark.parametrize(
    "body", [b"", b"  ", b"{", b"NaN", b"[Infinity]", b"-Infinity", b"{'a':1}"]
)
def test_parse_json_rejects(body: bytes) -> None:
    with pytest.raises(InvalidData):
        parse_json(body)


def test_parse_json_big_integers_become_doubles() -> None:
    value, _ = normalise(parse_json(b"123456789012345678901234567890"), 0)
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"a": None, "b": {}}, None),
        ([1, None, 3], {"0": 1, "2": 3}),
        ({"a": [None, {"b": None}]}, None),
        (2.0, 2),
        (1.5, 1.5),
        (2**63, float(2**63)),
        ({".value": 5, ".priority": 1}, {".value": 5, ".priority": 1}),
        ({".value": {"a": 1}, ".priority": "p"}, {"a": 1, ".priority": "p"}),
        ("", ""),
    ],
)
def test_normalise(value: Any, stored: Any) -> None:
    assert normalise(value, 0)[0] == stored


@pytest.mark.parametrize(
    "value",
    [
        {"a.b": 1},
        {"": 1},
        {"a": {"x/y": 1}},
        {".value": 1, "b": 2},
        {".sv": "nope"},
        {".sv": "timestamp", "x": 1},
        {".sv": {"increment": "1"}},
        {".priority": {"x": 1}, "a": 1},
    ],
)
def test_normalise_rejects(value: Any) -> None:
    with pytest.raises(InvalidData):
        normalise(value, 0)


def test_depth_limit_counts_the_path() -> None:
    deep: Any = 1
    for _ in range(30):
        deep = {"d": deep}
    normalise(deep, 1)
    with pytest.raises(InvalidData):
        normalise(deep, 3)


def test_keys() -> None:
    assert is_valid_key("a b+c")
    assert is_valid_key("é" * 384)
    assert not is_valid_key("é" * 384 + "x")
    for bad in (".", "$", "#", "[", "]", "/", "\x00", "\x7f", ""):
        assert not is_valid_key(f"a{bad}b" if bad else bad)


def test_server_values_resolve() -> None:
    value, has_sv = normalise({"t": {".sv": "timestamp"}, "n": {".sv": {"increment": 2}}}, 0)
    assert has_sv
    assert value["t"] == ServerValue("timestamp")
    assert resolve(value, 1000, {"n": 40}) == {"t": 1000, "n": 42}
    assert resolve(value, 1000, None) == {"t": 1000, "n": 2}


def test_add_numbers() -> None:
    assert add_numbers(40, 2) == 42
    assert add_numbers("x", 2) == 2
    assert add_numbers(1, 0.5) == 1.5
    assert add_numbers(2**63 - 1, 1) == float(2**63)


def _reference_resolve(value: Any, now_ms: int, current: Any) -> Any:
    """``resolve`` spelled out: a call for every node (the fast one keeps leaves inline)."""
    if type(value) is ServerValue:
        if value.kind == "timestamp":
            return now_ms
        if isinstance(current, dict) and ".value" in current:
            current = current[".value"]
        return add_numbers(current, value.amount)
    if type(value) is dict:
        cur = current if isinstance(current, dict) else {}
        out = {}
        for k, v in value.items():
            r = _reference_resolve(v, now_ms, cur.get(k))
            if r is not None:
                out[k] = r
        return out or None
    return value


_keys = st.sampled_from(["a", "b", "c"])
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=3),
        st.just({".sv": "timestamp"}),
        st.just({".sv": {"increment": 2}}),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=10,
)


@given(_json)
def test_a_leaf_inside_an_object_is_stored_as_alone(leaf: Any) -> None:
    # Leaves inside an object take an inline path; alone they go through the full one.
    alone, _ = normalise(leaf, 1)
    inside, _ = normalise({"a": leaf}, 0)
    assert inside == (None if alone is None else {"a": alone})


@given(_json, _json)
def test_resolve_keeps_leaves_inline_as_before(value: Any, current: Any) -> None:
    stored, _ = normalise(value, 0)
    now = 1_700_000_000_000
    assert resolve(stored, now, current) == _reference_resolve(stored, now, current)


_with_priority = st.one_of(
    _json,
    st.builds(lambda v, p: {".value": v, ".priority": p}, _json, st.sampled_from([None, 1, "p"])),
)


def _normalised(value: Any, now: int | None) -> Any:
    try:
        return normalise({"a": value, "b": {"c": value}}, 0, now)
    except InvalidData as exc:
        return str(exc)


@given(_with_priority, _json)
def test_timestamps_resolved_while_normalising_store_what_resolve_stores(
    value: Any, current: Any
) -> None:
    # The server resolves timestamps on the way (no second pass for a job record); what it
    # stores and what it refuses (a server value beside a priority) must not change.
    now = 1_700_000_000_000
    before, after = _normalised(value, None), _normalised(value, now)
    if isinstance(before, str):
        assert after == before
        return
    stored, has_server_values = after
    if has_server_values:  # increments are left for resolve, which needs the stored value
        stored = resolve(stored, now, current)
    assert stored == (resolve(before[0], now, current) if before[1] else before[0])


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH])
def test_a_timestamp_at_the_depth_limit_is_judged_as_any_object(levels: int) -> None:
    # Timestamps inside an object are resolved inline while normalising; the depth limit
    # still counts the {".sv"} object itself.
    value: Any = {".sv": "timestamp"}
    for _ in range(levels):
        value = {"a": value}
    if levels < MAX_DEPTH:
        stored, _ = normalise(value, 0, 7)
        for _ in range(levels):
            stored = stored["a"]
        assert stored == 7
    else:
        with pytest.raises(InvalidData):
            normalise(value, 0, 7)
