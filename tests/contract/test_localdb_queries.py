"""Conformance checklist 39-53: shallow, parameters and queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import RawClient

USERS = {
    "alice": {"age": 19, "stats": {"level": 3}},
    "bob": {"age": 23, "stats": {"level": 4}},
    "carol": {"age": 19, "stats": {"level": 1}},
    "dave": {"age": 27, "stats": {"level": 5}},
    "erin": {"age": 35, "stats": {"level": 2}},
    "frank": {"age": 42, "stats": {"level": 6}},
}
SCORES = {"alice": 64, "bob": 90, "carol": 15, "dave": 72, "erin": 88, "frank": 40}


def q(text: str) -> str:
    """Percent-encode quotes and braces the way requests does for the SDK."""
    return text.replace('"', "%22").replace("{", "%7B").replace("}", "%7D").replace(" ", "%20")


@pytest.fixture
def data(raw: RawClient) -> RawClient:
    raw.put("/.json", {"users": USERS, "scores": SCORES})
    return raw


def test_39_shallow(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/s.json", {"a": {"b": 1}, "c": 2, "p": "x"})
    assert raw.get("/s.json", query="shallow=true").json() == {"a": True, "c": True, "p": True}
    assert raw.get("/s/c.json", query="shallow=true").json() == 2
    assert raw.get("/nothing.json", query="shallow=true").json() is None
    assert sdk_db("s").get(shallow=True) == {"a": True, "c": True, "p": True}


def test_40_shallow_with_filters_or_with_plumbing(raw: RawClient) -> None:
    r = raw.get("/s.json", query=q('shallow=true&orderBy="$key"'))
    assert r.status_code == 400
    # auth_variable_override=null is judged as anonymous: allow reads so the call can succeed.
    raw.request("PUT", "/.settings/rules.json", body=b'{"rules": {".read": true}}')
    r = raw.get("/s.json", query="shallow=true&auth_variable_override=null&print=pretty")
    assert r.status_code == 200


def test_41_other_parameters(raw: RawClient) -> None:
    assert raw.get("/a.json", query="timeout=10s").status_code == 200
    assert raw.get("/a.json", query="timeout=0s").status_code == 400
    assert raw.get("/a.json", query="timeout=16min").status_code == 400
    r = raw.put("/a.json", 1, query="writeSizeLimit=unlimited&disableTriggers=true")
    assert r.status_code == 200
    assert raw.put("/a.json", 1, query="writeSizeLimit=huge").status_code == 400


def test_42_filters_need_order_by(data: RawClient) -> None:
    r = data.get("/users.json", query="limitToFirst=2")
    assert r.status_code == 400
    assert r.json() == {"error": "orderBy must be defined when other query parameters are defined"}


def test_43_bad_order_by_and_bounds(data: RawClient) -> None:
    assert data.get("/users.json", query="orderBy=age").status_code == 400
    for bad in ("equalTo={}", "startAt=[1]"):
        r = data.get("/users.json", query=q(f'orderBy="age"&{bad}'))
        assert r.status_code == 400
        assert r.json() == {"error": "Constraint index field must be a JSON primitive"}


@pytest.mark.parametrize(
    "query",
    [
        'orderBy="age"&limitToFirst=1&limitToLast=1',
        'orderBy="age"&limitToFirst=0',
        'orderBy="age"&limitToFirst=x',
        'orderBy="age"&equalTo=1&startAt=1',
        'orderBy="$key"&startAt=1',
        'orderBy="$nope"',
    ],
)
def test_44_invalid_combinations(data: RawClient, query: str) -> None:
    r = data.get("/users.json", query=q(query))
    assert r.status_code == 400
    assert len(r.json()["error"]) > 5


MIXED = {
    "n": None,
    "f": False,
    "t": True,
    "i1": 1,
    "i2": 2,
    "f15": 1.5,
    "s_a": "a",
    "s_b": "b",
    "o1": {"x": 1},
    "o2": {"y": 2},
}
# Documented cross-type order, ties broken by key: null < false < true < numbers < strings < objects.
MIXED_ORDER = ["f", "t", "i1", "f15", "i2", "s_a", "s_b", "o1", "o2"]  # "n" is not stored


def test_45_cross_type_order(raw: RawClient) -> None:
    raw.put("/m.json", {k: {"v": v} if v is not None else {"other": 1} for k, v in MIXED.items()})
    for n in range(1, 11):
        r = raw.get("/m.json", query=q(f'orderBy="v"&limitToFirst={n}'))
        expected = ["n", *MIXED_ORDER][:n]
        assert sorted(r.json()) == sorted(expected), n
    raw.put("/v.json", {k: v for k, v in MIXED.items() if v is not None})
    for n in range(1, 10):
        r = raw.get("/v.json", query=q(f'orderBy="$value"&limitToLast={n}'))
        assert sorted(r.json()) == sorted(MIXED_ORDER[-n:]), n


def test_46_missing_and_primitive_children_rank_null_and_nested_paths(data: RawClient) -> None:
    data.put("/users/zed.json", "primitive")
    r = data.get("/users.json", query=q('orderBy="age"&limitToFirst=1'))
    assert list(r.json()) == ["zed"]
    r = data.get("/users.json", query=q('orderBy="stats/level"&startAt=4'))
    assert sorted(r.json()) == ["bob", "dave", "frank"]


def test_47_key_order(raw: RawClient) -> None:
    keys = ["-5", "0", "1", "01", "2", "10", "9a", "a"]
    raw.put("/k.json", {k: True for k in keys})
    for n in range(1, len(keys) + 1):
        r = raw.get("/k.json", query=q(f'orderBy="$key"&limitToFirst={n}'))
        assert sorted(r.json()) == sorted(keys[:n]), n


def test_48_value_order_limit_to_last(data: RawClient) -> None:
    r = data.get("/scores.json", query=q('orderBy="$value"&limitToLast=2'))
    assert r.json() == {"erin": 88, "bob": 90}


def test_49_bounds_are_inclusive_and_cross_type(raw: RawClient) -> None:
    raw.put("/m.json", {k: v for k, v in MIXED.items() if v is not None})
    r = raw.get("/m.json", query=q('orderBy="$value"&startAt=1.5'))
    assert sorted(r.json()) == sorted(["f15", "i2", "s_a", "s_b", "o1", "o2"])
    r = raw.get("/m.json", query=q('orderBy="$value"&endAt=1.5'))
    assert sorted(r.json()) == sorted(["f", "t", "i1", "f15"])


def test_50_equal_to_and_prefix_ranges(data: RawClient) -> None:
    r = data.get("/users.json", query=q('orderBy="age"&equalTo=19'))
    assert sorted(r.json()) == ["alice", "carol"]
    data.put("/k.json", {"b": 1, "ba": 2, "bz": 3, "c": 4, "a": 5})
    r = data.get("/k.json", query=q('orderBy="$key"&startAt="b"&endAt="b\uf8ff"'))
    assert sorted(r.json()) == ["b", "ba", "bz"]


def test_51_key_cursor(data: RawClient) -> None:
    r = data.get("/users.json", query=q('orderBy="age"&startAt=19,"bob"'))
    assert sorted(r.json()) == ["bob", "carol", "dave", "erin", "frank"]
    r = data.get("/users.json", query=q('orderBy="age"&endAt=19,"bob"'))
    assert sorted(r.json()) == ["alice"]


def test_52_empty_results_arrays_and_sdk_queries(
    data: RawClient, sdk_db: Callable[[str], Any]
) -> None:
    r = data.get("/users.json", query=q('orderBy="age"&startAt=100'))
    assert r.json() == {}
    assert data.get("/none.json", query=q('orderBy="age"&startAt=1')).json() is None
    data.put("/arr.json", ["a", "b", "c"])
    assert data.get("/arr.json", query=q('orderBy="$value"&limitToFirst=2')).json() == ["a", "b"]
    users = sdk_db("users")
    assert list(users.order_by_child("age").limit_to_first(2).get()) == ["alice", "carol"]
    assert list(users.order_by_child("age").limit_to_last(2).get()) == ["erin", "frank"]
    assert len(users.order_by_child("age").limit_to_first(100).get()) == 6
    assert list(users.order_by_child("age").start_at(30).get()) == ["erin", "frank"]
    assert list(users.order_by_child("age").end_at(20).get()) == ["alice", "carol"]
    assert list(users.order_by_child("age").start_at(20).end_at(30).get()) == ["bob", "dave"]
    assert list(users.order_by_child("age").equal_to(19).get()) == ["alice", "carol"]
    assert list(users.order_by_child("stats/level").limit_to_last(1).get()) == ["frank"]
    assert list(users.order_by_key().start_at("c").limit_to_first(2).get()) == ["carol", "dave"]
    scores = sdk_db("scores")
    assert dict(scores.order_by_value().limit_to_first(2).get()) == {"carol": 15, "frank": 40}
    assert list(scores.order_by_value().start_at(80).get()) == ["erin", "bob"]


def test_53_strict_indexes(tmp_path: Any) -> None:
    from tests.support import start_db_server

    server = start_db_server(tmp_path, extra_args=["--strict-indexes"])
    raw = RawClient(server.url, "strict")
    try:
        raw.put("/users.json", USERS)
        r = raw.get("/users.json", query=q('orderBy="age"&limitToFirst=1'))
        assert r.status_code == 400
        assert r.json() == {
            "error": 'Index not defined, add ".indexOn": "age", for path "/users", to the rules'
        }
        assert raw.get("/users.json", query=q('orderBy="$key"&limitToFirst=1')).status_code == 200
        rules = b'{"rules": {"users": {".indexOn": ["age", "stats/level"]}}}'
        assert raw.request("PUT", "/.settings/rules.json", body=rules).status_code == 200
        r = raw.get("/users.json", query=q('orderBy="age"&limitToFirst=1'))
        assert r.status_code == 200
        assert r.json() == {"alice": USERS["alice"]}
        assert raw.get("/users.json", query=q('orderBy="stats/level"&startAt=6')).status_code == 200
    finally:
        raw.close()
        server.stop()
