"""One REST request and its answer on a kept-alive connection, without http.client's parsers.

``http.client`` costs ~27 us of Python to write a small request (validating each header as it
is added, then two sends: the head, then the body) and ~35 us to read a 204 answer, ~100 us a
200 with three headers (each answer's head goes through the ``email`` package's parser): about
a third of a process's CPU per write, in makers, clouds and the dispatcher alike. Here the
request is one string and one send, and the answer is parsed from the bytes as they come.

``http.client.HTTPConnection`` still opens the connection (TLS, and a proxy's CONNECT tunnel)
and keeps its socket; the streams (``EventStream``) stay on ``http.client`` altogether.
The errors are http.client's own (``RemoteDisconnected`` when the peer hangs up before any
answer, ``IncompleteRead`` part way, ``BadStatusLine``...), so callers treat them as before.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Mapping

_READ = 64 * 1024
_READ_LARGE = 1 << 20  # a body's reads once its size is known to be large
_MAX_HEAD = 64 * 1024  # answer head bytes (http.client: 64 KiB a line, 100 headers)
ONE_SEND_BYTES = 64 * 1024  # a body up to this size leaves in the same send as the head
_BODY_METHODS = frozenset({"PATCH", "POST", "PUT"})  # http.client sends Content-Length: 0
# What http.client refuses in a request target and in a header value (header splitting).
_BAD_TARGET = re.compile("[\x00-\x20\x7f]")
_BAD_VALUE = re.compile("[\r\n\x00]")


def host_header(host: str, port: int, https: bool) -> str:
    """The ``Host`` value http.client would send for ``host:port``."""
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if port == (443 if https else 80) else f"{host}:{port}"


def request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request's head, with the body when it is small (one send), as http.client writes
    it: Host, Accept-Encoding, Content-Length, then ``headers`` in their order."""
    if _BAD_TARGET.search(target) is not None or not target.isascii():
        raise http.client.InvalidURL(f"URL can't contain control characters: {target!r}")
    parts = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"]
    if body is not None:
        parts.append(f"Content-Length: {len(body)}\r\n")
    elif method in _BODY_METHODS:
        parts.append("Content-Length: 0\r\n")
    for name, value in headers.items():
        if _BAD_VALUE.search(value) is not None:
            raise ValueError(f"Invalid header value {value!r}")
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    if body is not None and len(body) <= ONE_SEND_BYTES:
        return head + body
    return head


def send(conn: http.client.HTTPConnection, data: bytes, body: bytes | None) -> None:
    """Send ``data`` (from ``request_bytes``) and the body if it was too big to go with it;
    connect first if the connection is not open."""
    if conn.sock is None:
        conn.connect()
    sock = conn.sock
    sock.sendall(data)
    if body is not None and len(body) > ONE_SEND_BYTES:
        sock.sendall(body)


def receive(conn: http.client.HTTPConnection, method: str) -> tuple[int, dict[str, str], bytes]:
    """Read one answer: (status, headers by their sent names, body).

    The connection is closed when the answer says so, ends with it, or has bytes after it
    (never read as the next answer); ``send`` opens a new one then.
    """
    reader = _Reader(conn.sock)
    while True:
        status, version, headers = _head(reader)
        if not 100 <= status < 200:
            break  # an interim answer (100 Continue) is followed by the real one
    lower = {name.lower(): value for name, value in headers.items()}
    connection = lower.get("connection", "").lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif lower.get("transfer-encoding", "").lower() == "chunked":
        body = _chunked(reader)
    elif "content-length" in lower:
        body = reader.exactly(_length(lower["content-length"]))
    else:
        body, close = reader.until_closed(), True
    if close or reader.buffer:
        conn.close()
    return status, headers, body


class _Reader:
    """Bytes from a socket, kept in a buffer until taken."""

    __slots__ = ("sock", "buffer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def more(self) -> bool:
        """Read what the socket has (waiting for a byte); False when the peer closed."""
        chunk = self.sock.recv(_READ)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def exactly(self, n: int) -> bytes:
        if len(self.buffer) < n:
            # Chunks kept apart and joined once: adding each to the buffer copied a large
            # answer over and over (a 15 MB GET took 0.5-0.9 s instead of 0.05-0.15 s).
            parts, have = [self.buffer], len(self.buffer)
            while have < n:
                chunk = self.sock.recv(min(n - have, _READ_LARGE))
                if not chunk:
                    raise http.client.IncompleteRead(b"".join(parts), n - have)
                parts.append(chunk)
                have += len(chunk)
            self.buffer = b"".join(parts)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def line(self) -> bytes:
        """Up to the next CRLF (taken, not returned)."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise http.client.LineTooLong("chunk size line")
            if not self.more():
                raise http.client.IncompleteRead(self.buffer)
        data, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return data

    def until_closed(self) -> bytes:
        parts = [self.buffer]
        while chunk := self.sock.recv(_READ_LARGE):
            parts.append(chunk)
        self.buffer = b""
        return b"".join(parts)


def _head(reader: _Reader) -> tuple[int, str, dict[str, str]]:
    while (end := reader.buffer.find(b"\r\n\r\n")) < 0:
        if len(reader.buffer) > _MAX_HEAD:
            raise http.client.LineTooLong("answer head")
        if not reader.more():
            if not reader.buffer:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response"
                )
            raise http.client.IncompleteRead(reader.buffer)
    lines = reader.buffer[:end].decode("latin-1").split("\r\n")
    reader.buffer = reader.buffer[end + 4 :]
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not (code.isdigit() and code.isascii()):
        raise http.client.BadStatusLine(lines[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name] = value.strip(" \t")
    return int(code), version, headers


def _length(value: str) -> int:
    if not value.strip().isdigit():
        raise http.client.HTTPException(f"bad Content-Length {value!r}")
    return int(value)


def _chunked(reader: _Reader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = _chunk_size(reader.line())
        if size < 0:
            raise http.client.IncompleteRead(b"".join(parts))
        if size == 0:
            while reader.line():  # trailers, up to the blank line
                pass
            return b"".join(parts)
        parts.append(reader.exactly(size))
        reader.exactly(2)  # the CRLF after each chunk


class ChunkDecoder:
    """The payload of a chunked body, fed as it arrives in pieces of any size (pure).

    An event stream's reads go through it instead of ``HTTPResponse.read1``, which returns one
    chunk a call, reading its size line and its trailing CRLF with calls of their own: the
    server sends each event as a chunk and often several in one write, and each came out of a
    separate read (and went through the SSE parser separately). Here one read's bytes give
    every payload byte they hold, at once.
    """

    def __init__(self) -> None:
        self._left = 0  # payload bytes still to come in the current chunk
        self._crlf = 0  # bytes of the CRLF after a chunk's payload still to skip
        self._line = b""  # a size line begun in an earlier piece
        self.ended = False  # the last chunk (size 0) has arrived

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (b"" when it holds none).

        Raises:
            http.client.IncompleteRead: a size line that is not hexadecimal, or too long.
        """
        if self.ended:
            return b""
        if self._line:
            data, self._line = self._line + data, b""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._crlf = 2  # the CRLF after the payload
                continue
            if self._crlf:
                skip = min(self._crlf, end - pos)
                pos += skip
                self._crlf -= skip
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                self._line = data[pos:]
                if len(self._line) > _MAX_HEAD:
                    raise http.client.IncompleteRead(b"".join(out))
                break
            size = _chunk_size(data[pos:eol])
            if size < 0:
                raise http.client.IncompleteRead(b"".join(out))
            pos = eol + 2
            if not size:
                self.ended = True  # trailers after it carry nothing for a stream
                break
            self._left = size
        return out[0] if len(out) == 1 else b"".join(out)


def _chunk_size(line: bytes) -> int:
    """A chunk's size from its size line (extensions ignored); -1 when it names none."""
    try:
        return int(line, 16)  # int() allows the whitespace around it, as http.client does
    except ValueError:
        try:
            return int(line.split(b";", 1)[0], 16)
        except ValueError:
            return -1
