"""Conformance checklist 1-9: addressing and basics (spec firebase-rest.md section 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support import RawClient

JSON_TYPE = "application/json; charset=utf-8"


def test_01_empty_namespace_reads_null(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    r = raw.get("/.json")
    assert r.status_code == 200
    assert r.json() is None
    assert r.headers["Content-Type"] == JSON_TYPE
    assert sdk_db("/").get() is None


def test_02_put_echo_and_read_back(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    r = raw.put("/a/b.json", "x")
    assert r.status_code == 200
    assert r.json() == "x"
    assert raw.get("/a.json").json() == {"b": "x"}
    assert raw.get("/a/b/.json").json() == "x"
    assert sdk_db("a").get() == {"b": "x"}


def test_03_print_silent_and_pretty(raw: RawClient) -> None:
    for method, body in (("PUT", b'{"k":1}'), ("POST", b'"v"'), ("PATCH", b'{"k":2}')):
        r = raw.request(method, "/p.json", body=body, query="print=silent")
        assert r.status_code == 204, method
        assert r.content == b""
    r = raw.get("/p.json", query="print=silent")
    assert r.status_code == 204
    assert r.content == b""
    pretty = raw.get("/p.json", query="print=pretty")
    assert pretty.status_code == 200
    assert b"\n" in pretty.content
    assert pretty.json() == raw.get("/p.json").json()


def test_04_delete(raw: RawClient, sdk_db: Callable[[str], Any]) -> None:
    raw.put("/a.json", {"x": 1})
    r = raw.request("DELETE", "/a.json")
    assert r.status_code == 200
    assert r.json() is None
    assert raw.get("/a.json").json() is None
    sdk_db("b").set(1)
    sdk_db("b").delete()
    assert sdk_db("b").get() is None


def test_05_method_override(raw: RawClient) -> None:
    raw.put("/a.json", {"x": 1, "y": 2})
    r = raw.request("POST", "/a/x.json", headers={"X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 200
    r = raw.request("POST", "/a.json", body=b'{"z":3}', query="x-http-method-override=PATCH")
    assert r.status_code == 200
    assert raw.get("/a.json").json() == {"y": 2, "z": 3}


def test_06_path_without_json_or_with_bad_keys(raw: RawClient) -> None:
    r = raw.get("/a")
    assert r.status_code == 404
    assert "error" in r.json()
    for path in ("/a/.foo.json", "/a$b.json", "/a#b.json".replace("#", "%23"), "/a%5Bb.json"):
        r = raw.get(path)
        assert r.status_code == 400, path
        assert r.json()["error"]


def test_07_percent_decoding_keeps_plus(raw: RawClient) -> None:
    raw.put("/a%20b.json", 1)
    raw.put("/a+b.json", 2)
    assert raw.get("/.json").json() == {"a b": 1, "a+b": 2}


def test_08_query_plus_is_literal(raw: RawClient) -> None:
    raw.put("/v.json", {"small": 1, "big": 2e300})
    r = raw.get("/v.json", query='orderBy="$value"&startAt=1.5e+300'.replace('"', "%22"))
    assert r.status_code == 200
    assert r.json() == {"big": 2e300}


def test_09_body_is_json_whatever_the_type_and_bad_bodies_write_nothing(raw: RawClient) -> None:
    r = raw.request(
        "PUT",
        "/f.json",
        body=b'{"a":1}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    for body in (b"", b"{bad", b"NaN", b'{"a": NaN}', b"Infinity", b"-Infinity", b"[1,]"):
        r = raw.request("PUT", "/f.json", body=body)
        assert r.status_code == 400, body
        assert isinstance(r.json()["error"], str)
    assert raw.get("/f.json").json() == {"a": 1}
