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


class _Transport:
    """What HttpConnection writes; it never closes nor pushes back."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def test_a_write_head_is_worked_out_once_and_pipelined_writes_keep_their_own(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # admit() judges a write's head before its body; handle() takes that judgement instead of
    # parsing the parameters and identifying the caller a second time.
    from atmosphere.localdb.protocol import FastServer, HttpConnection

    db = _db(tmp_path, token="s3cret")
    heads = []
    work_out = db._head

    def head(*args: Any) -> Any:
        heads.append(args)
        return work_out(*args)

    monkeypatch.setattr(db, "_head", head)
    conn = HttpConnection(FastServer(db))
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    requests = b""
    for ns, value in ((b"x", b"1"), (b"y", b"2")):
        requests += (
            b"PATCH /a.json?ns=" + ns + b"&print=silent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer s3cret\r\nContent-Length: 7\r\n\r\n"
            b'{"b":' + value + b"}"
        )
    conn.data_received(requests)  # pipelined: both heads before any answer
    assert [w[:13] for w in transport.written] == [b"HTTP/1.1 204 "] * 2
    assert len(heads) == 2  # once per request, not twice
    assert db.store.namespaces["x"].root == {"a": {"b": 1}}
    assert db.store.namespaces["y"].root == {"a": {"b": 2}}
    db.store.close()


def test_the_answer_to_a_silent_write_is_the_bare_204() -> None:
    assert encode_response(Response(204), True) == b"HTTP/1.1 204 No Content\r\n\r\n"
    closing = encode_response(Response(204), False)
    assert closing == b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
    tagged = encode_response(Response(204, b"", [(b"etag", b"x")]), True)
    assert tagged == b"HTTP/1.1 204 No Content\r\netag: x\r\n\r\n"


def _patch(ns: bytes, body: bytes) -> bytes:
    return (
        b"PATCH /a.json?ns=" + ns + b"&print=silent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer owner\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def test_what_one_loop_turn_sends_a_connection_leaves_in_one_write(tmp_path: Path) -> None:
    # Given a stream and two writers served in the same turn of the event loop
    import asyncio

    from atmosphere.localdb.protocol import FastServer, HttpConnection

    db = _db(tmp_path)
    server = FastServer(db)

    async def one_turn() -> tuple[_Transport, list[_Transport]]:
        server._loop = asyncio.get_running_loop()
        stream, writers = _Transport(), [_Transport(), _Transport()]
        conns = [HttpConnection(server) for _ in range(3)]
        for conn, transport in zip(conns, [stream, *writers], strict=True):
            conn.connection_made(transport)  # type: ignore[arg-type]
        conns[0].data_received(
            b"GET /a.json?ns=x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer owner\r\n"
            b"Accept: text/event-stream\r\n\r\n"
        )
        await asyncio.sleep(0)  # (the stream's head and first put: a turn of their own)
        stream.written.clear()
        # When both writers' requests arrive in one turn
        conns[1].data_received(_patch(b"x", b'{"b":1}'))
        conns[2].data_received(_patch(b"x", b'{"c":2}'))
        assert stream.written == [] and writers[0].written == []  # held until the turn ends
        await asyncio.sleep(0)
        return stream, writers

    stream, writers = asyncio.run(one_turn())
    # I expect the stream to get both events in one write, and each writer its answer
    assert len(stream.written) == 1
    assert stream.written[0].count(b"event: patch") == 2
    assert stream.written[0].index(b'"b":1') < stream.written[0].index(b'"c":2')
    assert [w.written for w in writers] == [[b"HTTP/1.1 204 No Content\r\n\r\n"]] * 2
    db.store.close()
