"""In-process tests of the protocol core and the response encoding (no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atmosphere.localdb.protocol import encode_response
from atmosphere.localdb.service import Config, LocalDb, Response, StreamRequest
from atmosphere.localdb.store import Store

OWNER = {b"authorization": b"Bearer owner"}


def _db(tmp_path: Path, **config: Any) -> LocalDb:
    store = Store(tmp_path)
    store.open()
    return LocalDb(store, Config(**config))


def test_core_round_trip(tmp_path: Path) -> None:
    db = _db(tmp_path)
    put = db.handle("PUT", b"/a/b.json", b"ns=x", OWNER, b'{"c": 1}')
    assert isinstance(put, Response) and put.status == 200 and put.body == b'{"c":1}'
    got = db.handle("GET", b"/a.json", b"ns=x", OWNER, b"")
    assert isinstance(got, Response) and got.body == b'{"b":{"c":1}}'
    denied = db.handle("GET", b"/a.json", b"ns=x", {}, b"")
    assert isinstance(denied, Response) and denied.status == 401
    stream = db.handle("GET", b"/a.json", b"ns=x", {**OWNER, b"accept": b"text/event-stream"}, b"")
    assert isinstance(stream, StreamRequest)
    db.store.close()


def test_default_rules_apply_to_new_namespaces(tmp_path: Path) -> None:
    db = _db(tmp_path, default_rules='{"rules": {".read": true}}')
    r = db.handle("GET", b"/a.json", b"ns=y", {}, b"")
    assert isinstance(r, Response) and r.status == 200
    w = db.handle("PUT", b"/a.json", b"ns=y", {}, b"1")
    assert isinstance(w, Response) and w.status == 401
    db.store.close()


def test_encode_response() -> None:
    assert encode_response(Response(204), True) == b"HTTP/1.1 204 No Content\r\n\r\n"
    data = encode_response(Response(200, b"1", [(b"etag", b"x")]), False)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 1\r\n" in data
    assert b"etag: x\r\n" in data
    assert b"connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\n1")
