"""The transport's requests as written on the wire, and its reading of answers (_wire.py)."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from atmosphere.db import _wire
from atmosphere.db._http import _connection

HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}


class _Socket:
    """Records what is sent; nothing is read."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def _sent(method: str, body: bytes | None, https: bool = False) -> list[bytes]:
    conn = _connection("127.0.0.1", 9400, https, 5.0, None)
    sock = _Socket()
    conn.sock = sock  # connected: sent on as it is
    host = _wire.host_header("127.0.0.1", 9400, https)
    _wire.send(conn, _wire.request_bytes(method, "/a.json?x=1", host, HEADERS, body), body)
    return sock.sends


def _http_client_sends(method: str, body: bytes | None) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", 9400)
    sock = _Socket()
    conn.sock = sock
    conn.request(method, "/a.json?x=1", body=body, headers=HEADERS)
    return b"".join(sock.sends)


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", b'{"jobs/j1/state":"assigned"}'), ("GET", None), ("DELETE", None), ("PUT", None)],
)
def test_a_request_is_what_http_client_sends_in_one_send(method: str, body: bytes | None) -> None:
    sends = _sent(method, body)
    assert len(sends) == 1  # http.client sends a body after the head: two system calls
    assert sends[0] == _http_client_sends(method, body)


def test_a_large_body_is_sent_after_the_head_without_a_copy() -> None:
    body = b"x" * (_wire.ONE_SEND_BYTES + 1)
    sends = _sent("PUT", body)
    assert len(sends) == 2
    assert sends[0].endswith(b"\r\n\r\n")
    assert sends[1] == body


def test_host_header_as_http_client_writes_it() -> None:
    assert _wire.host_header("127.0.0.1", 80, False) == "127.0.0.1"
    assert _wire.host_header("acme.firebaseio.com", 443, True) == "acme.firebaseio.com"
    assert _wire.host_header("::1", 9000, False) == "[::1]:9000"


def test_header_splitting_and_control_characters_in_the_target_are_refused() -> None:
    with pytest.raises(ValueError, match="Invalid header value"):
        _wire.request_bytes("GET", "/a.json", "h", {"if-match": "x\r\nEvil: 1"}, None)
    with pytest.raises(http.client.InvalidURL):
        _wire.request_bytes("GET", "/a b.json", "h", {}, None)


def _answer(method: str, *pieces: bytes, close: bool = False) -> tuple[object, ...]:
    """What ``receive`` makes of ``pieces`` sent one by one, and whether it closed the
    connection afterwards."""
    ours, theirs = socket.socketpair()
    conn = http.client.HTTPConnection("127.0.0.1", 1)
    conn.sock = ours

    def peer() -> None:
        for piece in pieces:
            theirs.sendall(piece)
        if close:
            theirs.close()

    thread = threading.Thread(target=peer)
    thread.start()
    try:
        return (*_wire.receive(conn, method), conn.sock is None)
    finally:
        thread.join()
        theirs.close()
        conn.close()


def test_answers_by_length_chunks_and_close() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: abc\r\n"
    assert _answer("GET", ok + b"Content-Length: 4\r\n\r\nnu", b"ll") == (
        200,
        {"Content-Type": "application/json", "ETag": "abc", "Content-Length": "4"},
        b"null",
        False,  # kept alive
    )
    chunked = ok + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n3;x=1\r\n[1]\r\n0\r\nT: 1\r\n\r\n"
    assert _answer("GET", chunked[:40], chunked[40:])[2] == b"{}[1]"
    assert _answer("GET", b"HTTP/1.1 200 OK\r\n\r\nto the end", close=True)[2:] == (
        b"to the end",
        True,
    )
    no_content = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    assert _answer("PATCH", no_content) == (204, {}, b"", False)
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1"
    assert _answer("GET", closing)[3] is True
    extra = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n"  # never read as the next
    assert _answer("DELETE", extra)[3] is True


def test_a_peer_that_hangs_up_raises_what_http_client_raises() -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        _answer("PATCH", close=True)
    with pytest.raises(http.client.IncompleteRead):
        _answer("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnul", close=True)
    with pytest.raises(http.client.IncompleteRead):
        _answer("GET", b"HTTP/1.1 200 OK\r\nContent-Le", close=True)
    with pytest.raises(http.client.BadStatusLine):
        _answer("GET", b"SSH-2.0-OpenSSH\r\n\r\n")


@pytest.mark.parametrize("size_line", [b"zz", b"", b"-3"])
def test_a_chunk_size_that_names_no_size_is_an_incomplete_read(size_line: bytes) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
    with pytest.raises(http.client.IncompleteRead):
        _answer("GET", chunked + size_line + b"\r\nabc\r\n0\r\n\r\n")


def test_a_large_answer_in_many_pieces_arrives_whole() -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert _answer("GET", head, *pieces)[2:] == (body, False)
    assert _answer("GET", b"HTTP/1.1 200 OK\r\n\r\n", *pieces, close=True)[2:] == (body, True)
    chunked = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _answer("GET", head, *chunked, b"0\r\n\r\n")[2] == body
