"""In-process tests of the protocol core and its ASGI front end (no sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from atmosphere.localdb.app import create_app
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


def test_asgi_front_end(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    app = create_app(store, Config(max_body=100))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            h = {"Authorization": "Bearer owner"}
            r = await client.put("/a.json?ns=z", content=b'{"x": [1, 2]}', headers=h)
            assert r.status_code == 200
            r = await client.patch("/a.json?ns=z&print=silent", content=b'{"y": 1}', headers=h)
            assert r.status_code == 204
            r = await client.get("/a.json?ns=z", headers=h)
            assert r.json() == {"x": [1, 2], "y": 1}
            r = await client.put("/a.json?ns=z", content=b'"' + b"x" * 200 + b'"', headers=h)
            assert r.status_code == 413
            r = await client.get("/a.json?ns=z")
            assert r.status_code == 401

    asyncio.run(scenario())
    store.close()
