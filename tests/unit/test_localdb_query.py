"""Unit tests of query parsing and Firebase ordering (atmosphere.localdb.query)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.localdb.query import parse_query
from atmosphere.rtdb.order import key_order, value_order
from atmosphere.rtdb.query import run_query
from atmosphere.rtdb.values import InvalidData


def test_key_order() -> None:
    keys = ["a", "9a", "10", "2", "01", "1", "0", "-5", "2147483648", "-2147483648"]
    assert sorted(keys, key=key_order) == [
        "-2147483648",
        "-5",
        "0",
        "1",
        "01",
        "2",
        "10",
        "2147483648",
        "9a",
        "a",
    ]


def test_value_order_ranks() -> None:
    values = [{"o": 1}, "b", "a", 2, 1.5, True, False, None]
    assert sorted(values, key=value_order) == [None, False, True, 1.5, 2, "a", "b", {"o": 1}]


@given(st.lists(st.text(alphabet="-0123456789ab", min_size=1, max_size=4), unique=True))
def test_key_order_is_total_and_deterministic(keys: list[str]) -> None:
    once = sorted(keys, key=key_order)
    assert sorted(reversed(keys), key=key_order) == once


@pytest.mark.parametrize(
    "params",
    [
        {"limitToFirst": "1"},
        {"orderBy": "age"},
        {"orderBy": '"age"', "limitToFirst": "0"},
        {"orderBy": '"age"', "limitToFirst": "1", "limitToLast": "1"},
        {"orderBy": '"age"', "equalTo": "1", "startAt": "1"},
        {"orderBy": '"age"', "startAt": "{}"},
        {"orderBy": '"$key"', "startAt": "1"},
        {"orderBy": '"$other"'},
        {"orderBy": '"/"'},
    ],
)
def test_parse_rejects(params: dict[str, str]) -> None:
    with pytest.raises(InvalidData):
        parse_query(params)


def test_parse_accepts_cursor_and_no_query() -> None:
    assert parse_query({"ns": "x"}) is None
    q = parse_query({"orderBy": '"age"', "startAt": '19,"bob"'})
    assert q is not None and q.start is not None
    assert (q.start.value, q.start.key) == (19, "bob")


USERS = {
    "alice": {"age": 19},
    "bob": {"age": 23},
    "carol": {"age": 19},
    "dave": {"age": 27},
    "zed": "primitive",
}


def _run(node: Any, **params: str) -> Any:
    q = parse_query(params)
    assert q is not None
    return run_query(q, node)


def test_child_order_windows() -> None:
    assert list(_run(USERS, orderBy='"age"', limitToFirst="2")) == ["zed", "alice"]
    assert sorted(_run(USERS, orderBy='"age"', equalTo="19")) == ["alice", "carol"]
    assert sorted(_run(USERS, orderBy='"age"', startAt="20")) == ["bob", "dave"]
    assert sorted(_run(USERS, orderBy='"age"', endAt="null")) == ["zed"]
    assert _run(USERS, orderBy='"age"', startAt="100") == {}
    assert _run("primitive", orderBy='"age"') is None
    assert _run(None, orderBy='"age"') is None


def test_value_and_key_order() -> None:
    scores = {"a": 64, "b": 90, "c": 15, "d": "x"}
    assert list(_run(scores, orderBy='"$value"', limitToLast="2")) == ["b", "d"]
    assert list(_run(scores, orderBy='"$key"', startAt='"b"', endAt='"c"')) == ["b", "c"]


def test_priority_order() -> None:
    node = {"a": {".value": 1, ".priority": "z"}, "b": {".value": 2, ".priority": 1}, "c": 3}
    assert list(_run(node, orderBy='"$priority"')) == ["c", "b", "a"]
