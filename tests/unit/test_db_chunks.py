"""An event stream's chunked body decoded as it arrives (``_wire.ChunkDecoder``), against
what http.client reads from the same bytes."""

from __future__ import annotations

import http.client
import io
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.db import _wire
from atmosphere.db._http import EventStream


def _chunked(payloads: list[bytes], extension: bytes = b"") -> bytes:
    body = b"".join(b"%x%b\r\n%b\r\n" % (len(p), extension, p) for p in payloads)
    return body + b"0\r\n\r\n"


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _http_client_payload(data: bytes) -> bytes:
    """What http.client's chunked reading makes of ``data``, one read1 at a time."""

    class _Sock:
        def makefile(self, *_a: object, **_k: object) -> io.BufferedReader:
            head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            return io.BufferedReader(io.BytesIO(head + data))

    response = http.client.HTTPResponse(_Sock())  # type: ignore[arg-type]
    response.begin()
    parts = []
    while piece := response.read1(1 << 20):
        parts.append(piece)
    return b"".join(parts)


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
    extension=st.sampled_from([b"", b";name=value", b" "]),
)
def test_any_split_of_any_chunks_gives_the_payload_http_client_gives(
    payloads: list[bytes], cuts: list[int], extension: bytes
) -> None:
    data = _chunked(payloads, extension)
    decoder = _wire.ChunkDecoder()
    out = b"".join(decoder.feed(piece) for piece in _split(data, cuts))
    assert out == b"".join(payloads) == _http_client_payload(data)
    assert decoder.ended


def test_nothing_after_the_last_chunk_is_payload() -> None:
    decoder = _wire.ChunkDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n\r\n") == b"abc"
    assert decoder.ended
    assert decoder.feed(b"5\r\nhello\r\n") == b""


def test_a_piece_within_a_size_line_or_a_crlf_holds_no_payload() -> None:
    decoder = _wire.ChunkDecoder()
    assert decoder.feed(b"1") == b""
    assert decoder.feed(b"0\r") == b""
    assert decoder.feed(b"\n0123456789abcdef") == b"0123456789abcdef"
    assert decoder.feed(b"\r") == b""
    assert decoder.feed(b"\n2\r\nxy\r\n") == b"xy"
    assert not decoder.ended


@pytest.mark.parametrize("bad", [b"zz\r\n", b"\r\n", b"-\r\n", b"-3\r\n"])
def test_a_size_line_that_is_not_hexadecimal_is_an_incomplete_read(bad: bytes) -> None:
    decoder = _wire.ChunkDecoder()
    assert decoder.feed(b"2\r\nok\r\n") == b"ok"
    with pytest.raises(http.client.IncompleteRead):
        decoder.feed(bad)


def test_an_endless_size_line_is_refused_not_buffered() -> None:
    decoder = _wire.ChunkDecoder()
    with pytest.raises(http.client.IncompleteRead):
        for _ in range(100):
            decoder.feed(b"0" * 4096)


def _served(data: bytes, close: bool) -> EventStream:
    """An EventStream reading ``data`` (after a chunked 200 head) from a real socket."""
    ours, theirs = socket.socketpair()
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    def serve() -> None:
        theirs.sendall(head + data)
        if close:
            theirs.close()

    threading.Thread(target=serve, daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1")
    conn.sock = ours
    response = http.client.HTTPResponse(ours)
    response.begin()
    return EventStream(conn, response, ours)


def test_a_stream_read_gives_every_chunk_the_socket_holds_and_ends_at_the_last() -> None:
    events = [b"event: put\ndata: {}\n\n", b"event: keep-alive\ndata: null\n\n"]
    stream = _served(_chunked(events), close=False)
    got = b""
    while len(got) < len(b"".join(events)):
        got += stream.read()
    assert got == b"".join(events)
    assert stream.read() == b""  # the last chunk: the stream ended
    stream.close()


def test_a_stream_cut_within_a_chunk_raises_as_http_client_does() -> None:
    stream = _served(b"10\r\nonly part", close=True)
    assert stream.read() == b"only part"
    with pytest.raises(http.client.IncompleteRead):
        stream.read()
    stream.close()
