"""Conformance checklist 19-29: push ids, PATCH and server values."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import RawClient, SseStream

PUSH_ID = re.compile(r"^[-0-9A-Za-z_]{20}$")


def test_19_post_returns_a_push_id(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    r = raw.request("POST", "/list.json", body=b'{"v":1}')
    assert r.status_code == 200
    name = r.json()["name"]
    assert PUSH_ID.match(name)
    assert raw.get(f"/list/{name}.json").json() == {"v": 1}
    ref = sdk_db("list").push({"v": 2})
    assert PUSH_ID.match(ref.key)
    assert ref.get() == {"v": 2}


def test_20_push_ids_unique_and_increasing_in_commit_order(db_server: Any, ns: str) -> None:
    stream = SseStream(db_server.url, "/q.json", ns)  # events arrive in commit order
    assert stream.next() == ("put", {"path": "/", "data": None})
    names: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        client = RawClient(db_server.url, ns)
        try:
            for _ in range(1250):
                name = client.request("POST", "/q.json", body=b"1").json()["name"]
                with lock:
                    names.append(name)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = [stream.next()[1]["path"][1:] for _ in range(10_000)]
    stream.close()
    assert len(set(names)) == 10_000
    assert sorted(committed) == sorted(names)
    assert committed == sorted(committed, key=lambda s: s.encode())  # byte order = commit order


def test_21_patch_merges(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/m.json", {"a": 0, "b": 1})
    sdk_db("m").update({"a": 1})
    assert raw.get("/m.json").json() == {"a": 1, "b": 1}
    r = raw.request("PATCH", "/m.json", body=b'{"c":2}', query="print=silent")
    assert r.status_code == 204


def test_22_patch_deep_paths_and_deletes(raw: RawClient) -> None:
    raw.put("/m.json", {"z": 1, "k": 2})
    r = raw.request("PATCH", "/m.json", body=b'{"x/y":1,"z":null,"w/":3}')
    assert r.status_code == 200
    assert raw.get("/m.json").json() == {"x": {"y": 1}, "k": 2, "w": 3}


def test_23_patch_value_replaces(raw: RawClient) -> None:
    raw.put("/m.json", {"a": {"b": 0, "c": 1}})
    raw.request("PATCH", "/m.json", body=b'{"a":{"b":1}}')
    assert raw.get("/m.json").json() == {"a": {"b": 1}}


def test_24_overlapping_patch_paths(raw: RawClient) -> None:
    raw.put("/m.json", {"q": 1})
    r = raw.request("PATCH", "/m.json", body=b'{"a":1,"a/b":2}')
    assert r.status_code == 400
    assert raw.get("/m.json").json() == {"q": 1}


@pytest.mark.parametrize("body", [b"[1]", b'"s"', b"5", b"null"])
def test_25_patch_body_must_be_an_object(raw: RawClient, body: bytes) -> None:
    r = raw.request("PATCH", "/m.json", body=body)
    assert r.status_code == 400
    assert r.json()["error"]


def test_26_timestamps(raw: RawClient) -> None:
    ts = {".sv": "timestamp"}
    before = int(time.time() * 1000)
    raw.put("/t.json", {"a": ts, "b": {"c": ts}})
    raw.request("POST", "/p.json", body=b'{"at":{".sv":"timestamp"}}')
    raw.request("PATCH", "/u.json", body=b'{"x":{".sv":"timestamp"}}')
    after = int(time.time() * 1000)
    t = raw.get("/t.json").json()
    assert t["a"] == t["b"]["c"]
    assert isinstance(t["a"], int) and before <= t["a"] <= after
    (pushed,) = raw.get("/p.json").json().values()
    assert before <= pushed["at"] <= after
    assert before <= raw.get("/u/x.json").json() <= after


@pytest.mark.parametrize(
    ("start", "delta", "result"),
    [(40, 2, 42), (None, 2, 2), ("str", 2, 2), (1, 0.5, 1.5), (2**63 - 1, 1, float(2**63))],
)
def test_27_increment(raw: RawClient, start: Any, delta: Any, result: Any) -> None:
    if start is not None:
        raw.put("/n.json", start)
    r = raw.put("/n.json", {".sv": {"increment": delta}})
    assert r.status_code == 200
    got = raw.get("/n.json").json()
    assert got == result
    assert type(got) is type(result)


def test_28_concurrent_increments(db_server: Any, ns: str) -> None:
    def worker() -> None:
        client = RawClient(db_server.url, ns)
        try:
            for _ in range(250):
                r = client.request("PATCH", "/.json", body=b'{"n":{".sv":{"increment":1}}}')
                assert r.status_code == 200
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = RawClient(db_server.url, ns)
    assert raw.get("/n.json").json() == 2000
    raw.close()


@pytest.mark.parametrize(
    "value",
    [{".sv": "foo"}, {".sv": {"increment": "x"}}, {".sv": "timestamp", "x": 1}, {".sv": {}}],
)
def test_29_bad_server_values(raw: RawClient, value: Any) -> None:
    raw.put("/s.json", 1)
    r = raw.put("/s.json", {"a": value})
    assert r.status_code == 400
    assert r.json()["error"]
    r = raw.request("PATCH", "/.json", body=b'{"s": {".sv": "foo"}}')
    assert r.status_code == 400
    assert raw.get("/s.json").json() == 1
