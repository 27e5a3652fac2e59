"""Conformance checklist 30-38: ETags, conditional requests and transactions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.support import RawClient


def _etag(raw: RawClient, path: str) -> str:
    r = raw.get(path, headers={"X-Firebase-ETag": "true"})
    assert r.status_code == 200
    etag: str = r.headers["ETag"]
    return etag


def test_30_etag_follows_content(raw: RawClient) -> None:
    raw.put("/a.json", {"x": 1})
    first = _etag(raw, "/a.json")
    assert first == _etag(raw, "/a.json")
    raw.put("/a/x.json", 2)
    changed = _etag(raw, "/a.json")
    assert changed != first
    raw.put("/a/x.json", 1)
    assert _etag(raw, "/a.json") == first


def test_31_null_etag_and_unrelated_writes(raw: RawClient) -> None:
    assert _etag(raw, "/a.json") == "null_etag"
    raw.put("/a.json", 1)
    tag = _etag(raw, "/a.json")
    raw.put("/b.json", 2)
    assert _etag(raw, "/a.json") == tag


def test_32_if_none_match(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/a.json", {"x": 1})
    tag = _etag(raw, "/a.json")
    r = raw.get("/a.json", headers={"if-none-match": tag})
    assert r.status_code == 304
    assert r.content == b""
    r = raw.get("/a.json", headers={"if-none-match": "stale"})
    assert r.status_code == 200
    assert r.json() == {"x": 1}
    assert r.headers["ETag"] == tag
    ref = sdk_db("a")
    assert ref.get_if_changed(tag) == (False, None, None)
    assert ref.get_if_changed("stale") == (True, {"x": 1}, tag)


def test_33_put_if_match_current(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/a.json", 1)
    tag = _etag(raw, "/a.json")
    r = raw.put("/a.json", 2, headers={"if-match": tag})
    assert r.status_code == 200
    assert r.headers["ETag"] == _etag(raw, "/a.json")
    assert raw.get("/a.json").json() == 2
    ok, value, new_tag = sdk_db("a").set_if_unchanged(r.headers["ETag"], 3)
    assert (ok, value) == (True, 3)
    assert new_tag == _etag(raw, "/a.json")


def test_34_put_if_match_stale(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/a.json", {"v": 1})
    tag = _etag(raw, "/a.json")
    r = raw.put("/a.json", 2, headers={"if-match": "stale"})
    assert r.status_code == 412
    assert r.headers["ETag"] == tag
    assert r.json() == {"v": 1}
    assert raw.get("/a.json").json() == {"v": 1}
    assert sdk_db("a").set_if_unchanged("stale", 5) == (False, {"v": 1}, tag)


def test_35_if_match_null_etag(raw: RawClient) -> None:
    assert raw.put("/a.json", 1, headers={"if-match": "null_etag"}).status_code == 200
    r = raw.put("/a.json", 2, headers={"if-match": "null_etag"})
    assert r.status_code == 412
    assert r.json() == 1


def test_36_delete_if_match(raw: RawClient) -> None:
    raw.put("/a.json", 1)
    r = raw.request("DELETE", "/a.json", headers={"if-match": "stale"})
    assert r.status_code == 412
    assert r.json() == 1
    assert r.headers["ETag"] == _etag(raw, "/a.json")
    r = raw.request("DELETE", "/a.json", headers={"if-match": _etag(raw, "/a.json")})
    assert r.status_code == 200
    assert r.json() is None
    assert raw.get("/a.json").json() is None


def test_37_etag_headers_where_not_supported(raw: RawClient) -> None:
    raw.put("/a.json", 1)
    assert raw.get("/a.json", headers={"if-match": "null_etag"}).status_code == 400
    r = raw.request("POST", "/a.json", body=b"1", headers={"if-match": "x"})
    assert r.status_code == 400
    for h in ({"if-match": "x"}, {"X-Firebase-ETag": "true"}):
        r = raw.request("PATCH", "/b.json", body=b'{"a":1}', headers=h)
        assert r.status_code == 400
    assert raw.get("/b.json").json() is None


def test_38_transactions(sdk_db: Callable[[str], Any]) -> None:
    counter = sdk_db("counter")
    errors: list[BaseException] = []
    go = threading.Barrier(10)

    def add_one() -> None:
        go.wait()
        try:
            counter.transaction(lambda v: (v or 0) + 1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=add_one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counter.get() == 10
    doc = sdk_db("doc")
    assert doc.transaction(lambda v: {"n": 1, "tags": ["a"]}) == {"n": 1, "tags": ["a"]}
    assert doc.transaction(lambda v: {**v, "n": v["n"] + 1}) == {"n": 2, "tags": ["a"]}
    assert doc.get() == {"n": 2, "tags": ["a"]}
