"""Conformance checklist 10-18: the JSON tree model, keys and limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import RawClient


def test_10_nulls_and_empty_objects_store_nothing(raw: RawClient) -> None:
    raw.put("/a.json", {"a": None, "b": {}})
    assert raw.get("/a.json").json() is None
    raw.put("/b.json", {"x": 1})
    assert raw.put("/b.json", {}).status_code == 200
    assert raw.get("/b.json").json() is None
    raw.put("/c.json", {"x": 1})
    raw.put("/c.json", [])
    assert raw.get("/c.json").json() is None


def test_11_deleting_the_last_child_removes_empty_ancestors(raw: RawClient) -> None:
    raw.put("/a/b/c.json", 1)
    raw.request("DELETE", "/a/b/c.json")
    assert raw.get("/a/b.json").json() is None
    assert raw.get("/a.json").json() is None
    assert raw.get("/.json").json() is None


def test_12_empty_string_is_a_value(sdk_db: Callable[[str], Any]) -> None:
    child = sdk_db("items").push()
    assert child.get() == ""
    assert sdk_db("items").get() == {child.key: ""}


def test_13_arrays_round_trip(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/x.json", [1, None, 3])
    assert raw.get("/x.json").json() == [1, None, 3]
    assert raw.get("/x/1.json").json() is None
    assert raw.get("/x/2.json").json() == 3
    assert sdk_db("x").get() == [1, None, 3]


@pytest.mark.parametrize(
    ("stored", "rendered"),
    [
        ({"1": "a", "2": "b"}, [None, "a", "b"]),
        ({"0": "a", "5": "b"}, {"0": "a", "5": "b"}),
        ({"01": 1}, {"01": 1}),
        ({"a": {"0": 1, "1": 2}}, {"a": [1, 2]}),
    ],
)
def test_14_array_rendering(raw: RawClient, stored: Any, rendered: Any) -> None:
    raw.put("/r.json", stored)
    assert raw.get("/r.json").json() == rendered


def test_14_export_never_renders_arrays(raw: RawClient) -> None:
    raw.put("/r.json", {"1": "a", "2": "b"})
    assert raw.get("/r.json", query="format=export").json() == {"1": "a", "2": "b"}


def test_15_write_below_a_primitive_and_numbers(raw: RawClient) -> None:
    raw.put("/a.json", "x")
    raw.put("/a/b.json", 1)
    assert raw.get("/a.json").json() == {"b": 1}
    raw.put("/n.json", {"i": 42, "f": 1.5, "d": 2.0})
    assert raw.get("/n.json").content == b'{"i":42,"f":1.5,"d":2}'


BAD_KEYS = [".", "$", "#", "[", "]", "a.b", "\x00", "\x1f", "\x7f", ""]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_16_invalid_body_keys_reject_the_whole_write(raw: RawClient, key: str) -> None:
    raw.put("/k.json", {"ok": 1})
    r = raw.put("/k.json", {"fine": 2, "deep": {key: 1}})
    assert r.status_code == 400
    assert r.json()["error"]
    assert raw.get("/k.json").json() == {"ok": 1}


def test_16_slash_in_a_body_key_is_rejected(raw: RawClient) -> None:
    r = raw.put("/k.json", {"a/b": 1})
    assert r.status_code == 400
    assert raw.get("/k.json").json() is None


def test_17_limits(raw: RawClient) -> None:
    key768 = "é" * 384  # 768 UTF-8 bytes
    assert raw.put("/l.json", {key768: 1}).status_code == 200
    assert raw.put("/m.json", {key768 + "x": 1}).status_code == 400
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}
    assert raw.put("/deep.json", deep).status_code == 400
    assert raw.get("/deep.json").json() is None
    assert raw.put("/big.json", "x" * (10 * 1024 * 1024 + 1)).status_code == 400
    assert raw.get("/big.json").json() is None


def test_18_value_and_priority(raw: RawClient) -> None:
    r = raw.put("/v.json", {".value": 5, "x": 1})
    assert r.status_code == 400
    raw.put("/p.json", {".value": 5, ".priority": 1})
    assert raw.get("/p.json").json() == 5
    assert raw.get("/p/.priority.json").json() == 1
    assert raw.get("/p.json", query="format=export").json() == {".value": 5, ".priority": 1}


def test_writing_nothing_below_a_primitive_keeps_it(raw: RawClient) -> None:
    for method, path, body in (
        ("PUT", "/p/a.json", b"{}"),
        ("PUT", "/p/a.json", b"null"),
        ("PATCH", "/p.json", b'{"a": null}'),
        ("DELETE", "/p/a.json", None),
    ):
        raw.put("/p.json", True)
        assert raw.request(method, path, body=body).status_code == 200
        assert raw.get("/p.json").json() is True, (method, path, body)
