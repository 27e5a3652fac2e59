"""The fast front end: an asyncio protocol on httptools that answers from ``data_received``.

Plain requests run to completion synchronously (no task, no ASGI messages), which measured
about 3x less server CPU per small write than uvicorn's ASGI cycle. Streams get each event as
the commit happens (chunked encoding), and a connection whose unread backlog passes the limit
is aborted.

What a connection is sent during one turn of the event loop (answers, events) is held and sent
as one write at the end of the turn: a turn often serves several requests (one from each
process woken at once), and each commit has an event for the same streams (the dispatcher's,
say), which took one send each and woke their reader once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from http import HTTPStatus
from typing import Any, NamedTuple, cast

import httptools

from atmosphere.hosts import is_loopback

from .events import KEEP_ALIVE, Listener
from .service import Admitted, LocalDb, Response, StreamRequest, error

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CACHE = b"cache-control: no-cache\r\n"
_JSON = b"content-type: application/json; charset=utf-8\r\n"
_CLOSE = b"connection: close\r\n"
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
)


_BACKLOG = 1024 * 1024  # unsent answer bytes after which pipelined requests wait
# Request heads are buffered before anyone is authenticated: bound them, or any client that
# can connect could grow the server's memory without end.
MAX_URL_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
# A body refused from the head is read and dropped up to this size (so a client still sending
# it gets the answer, not a reset); beyond it the connection is closed.
DRAIN_BYTES = 256 * 1024


class _Pending(NamedTuple):
    """A complete request not answered yet."""

    method: bytes
    url: bytes
    headers: dict[bytes, bytes]
    body: bytes
    keep_alive: bool
    admitted: Admitted | None
    parsed: Any  # the URL as httptools parsed it for ``admit`` (None: not parsed yet)


_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"  # every silent write's answer
# Our client asks (with this request header) whether the server also listens on a Unix socket;
# the answer carries its path in the same header. Nobody else asks: firebase-admin sees nothing.
SOCKET_HEADER = b"x-atmosphere-socket"


def encode_response(r: Response, keep_alive: bool) -> bytes:
    """The bytes of one HTTP/1.1 answer."""
    if r.status == 204 and keep_alive and not r.headers:
        return _NO_CONTENT
    parts = [_STATUS_LINES.get(r.status) or f"HTTP/1.1 {r.status} Unknown\r\n".encode()]
    if r.status != 204:  # nothing to cache or type: fewer header lines are cheaper
        parts.append(_CACHE)
        if r.body:
            parts.append(_JSON)
        if r.status != 304:
            parts.append(b"content-length: %d\r\n" % len(r.body))
    for name, value in r.headers:
        parts.append(name + b": " + value + b"\r\n")
    if not keep_alive:
        parts.append(_CLOSE)
    parts.append(b"\r\n")
    if r.body and r.status != 304:
        parts.append(r.body)
    return b"".join(parts)


class HttpConnection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive requests, or one event stream."""

    def __init__(self, server: FastServer) -> None:
        self.server = server
        self.db = server.db
        self.max_body = server.db.config.max_body
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.last_active = server.now()  # when the last byte arrived or the last answer left
        self.request_began: float | None = None  # the first byte of an unfinished request
        self.parser = httptools.HttpRequestParser(self)
        self.listener: Listener | None = None
        self.done = False  # no more requests on this connection
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_head = False  # between the start of a request and the end of its headers
        self._began = False  # a request started during the current feed
        self._head_bytes = 0  # bytes of whole reads that fell inside the current head
        self._body: list[bytes] = []
        self._size = 0
        self._limit = self.max_body  # the largest body this request's caller may send
        self._too_large = False
        self._refused = False  # answered from the head: the body is dropped
        self._admitted: Admitted | None = None  # what the head of a write was judged
        self._parsed: Any = None  # its URL, parsed then (not again to serve it)
        self._pending: deque[_Pending] = deque()
        self._out: list[bytes] = []  # what this turn sends (see FastServer.flush)
        self._out_bytes = 0

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if not self.server.join(self):
            limit = self.db.config.max_client_connections
            self._fail(error(503, f"Too many connections from {self.peer} (at most {limit})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.leave(self)
        self.done = True
        if self.listener is not None:
            self.listener.closed = True
            self.db.unsubscribe(self.listener)
            self.listener = None

    def pause_writing(self) -> None:
        # A client that sends requests but does not read the answers: stop reading its
        # requests until it catches up (streams are bounded by the listener buffer instead).
        if self.listener is None and self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.listener is not None or self.transport is None:
            return
        while self._pending and self.backlog() <= _BACKLOG:
            self._serve(self._pending.popleft())
        if not self.done and not self._pending:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.last_active = self.server.now()
        was_in_head, self._began = self._in_head, False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(error(400, "Protocol upgrades are not supported"))
        except httptools.HttpParserError:
            self._fail(error(400, "Malformed HTTP request"))
        if was_in_head and self._in_head and not self._began and not self.done:
            # httptools buffers a header until it ends, out of our sight: count whole reads
            # that neither finished the head nor started a new request.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._fail(error(431, f"Request headers exceed {MAX_HEADER_BYTES} bytes"))

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request_began = self.last_active
        self._url = b""
        self._headers = {}
        self._in_head = self._began = True
        self._head_bytes = 0
        self._body = []
        self._size = 0
        self._too_large = False
        self._refused = False
        self._admitted = None
        self._parsed = None

    def on_url(self, url: bytes) -> None:
        if self.done:
            return
        self._url += url
        if len(self._url) > MAX_URL_BYTES:
            self._fail(error(414, f"Request URL exceeds {MAX_URL_BYTES} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self.done or self.transport is None:
            return
        self._limit = self.max_body
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            verdict = self._admit(method)
            if isinstance(verdict, Response):
                # Answered before the body: it is never buffered, parsed or judged.
                self._refused = True
                self._send(encode_response(verdict, keep_alive=False))
                return
            if verdict is not None:
                self._limit = verdict.limit
                self._admitted = verdict
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            self._too_large = True
        elif self._headers.get(b"expect", b"").lower() == b"100-continue":
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it

    def _admit(self, method: bytes) -> Response | Admitted | None:
        try:
            url = self._parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            return None  # answered as a bad URL once complete
        return self.db.admit(
            method.decode("latin-1"), url.path or b"/", url.query or b"", self._headers
        )

    def on_body(self, chunk: bytes) -> None:
        if self._refused:
            self._size += len(chunk)
            if self._size > DRAIN_BYTES and not self.done:
                self._close()
            return
        if self._too_large:
            return
        self._size += len(chunk)
        if self._size > self._limit:
            self._too_large = True
            self._body = []
        else:
            self._body.append(chunk)

    def on_message_complete(self) -> None:
        self.request_began = None
        if self.done or self.transport is None:
            return
        if self._refused:
            self._close()
            return
        if self._too_large:
            self._fail(error(413, f"Request body exceeds {self._limit} bytes"))
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = _Pending(
            self.parser.get_method(),
            self._url,
            self._headers,
            body,
            self.parser.should_keep_alive(),
            self._admitted,
            self._parsed,
        )
        if self._pending or self.backlog() > _BACKLOG:
            # Pipelined requests from a client that does not read its answers wait here (at
            # most one read's worth) instead of each adding an answer to the output buffer.
            self._pending.append(request)
        else:
            self._serve(request)

    def _serve(self, request: _Pending) -> None:
        assert self.transport is not None
        try:
            url = request.parsed
            if url is None:
                url = httptools.parse_url(request.url)
            answer = self.db.handle(
                request.method.decode("latin-1"),
                url.path or b"/",
                url.query or b"",
                request.headers,
                request.body,
                request.admitted,
            )
        except httptools.HttpParserInvalidURLError:
            answer = error(400, "Invalid URL")
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            answer = error(500, "Internal error")
        if self.server.unix_path is not None and SOCKET_HEADER in request.headers:
            self._name_socket(answer)
        if isinstance(answer, StreamRequest):
            self._pending.clear()
            self._start_stream(answer)
            return
        self._send(encode_response(answer, request.keep_alive))
        self.last_active = self.server.now()
        if not request.keep_alive:
            self.done = True
            self._pending.clear()
            self._close()

    def _name_socket(self, answer: Response | StreamRequest) -> None:
        """Tell a client on this machine whose request was let through where the Unix socket
        is; nobody else learns the data directory's path (a refused request, a remote peer)."""
        permitted = isinstance(answer, StreamRequest) or answer.status < 400
        if permitted and (not self.peer or is_loopback(self.peer)):  # no peer: a Unix one
            assert self.server.unix_path is not None
            answer.headers.append((SOCKET_HEADER, self.server.unix_path))

    # -- streams ---------------------------------------------------------------------

    def _start_stream(self, stream: StreamRequest) -> None:
        assert self.transport is not None
        self.done = True  # the connection now belongs to the stream
        extra = b"".join(name + b": " + value + b"\r\n" for name, value in stream.headers)
        self._send(_STREAM_HEAD + extra + b"\r\n")
        self.listener = self.db.subscribe(stream, sink=self)
        self.server.streams.add(self)

    def write(self, data: bytes) -> int:
        """Sink: send one chunk; return the unsent backlog."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        self._send(b"%x\r\n%b\r\n" % (len(data), data))
        return self.backlog()

    def end(self) -> None:
        """Sink: finish the chunked response and close."""
        self.server.streams.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self._send(b"0\r\n\r\n")
            self._close()

    def abort(self) -> None:
        """Sink: drop the connection."""
        self.server.streams.discard(self)
        self._out.clear()
        self._out_bytes = 0
        if self.transport is not None:
            self.transport.abort()

    # -- output ------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Queue ``data`` for the end of this turn (FastServer.flush sends it)."""
        first = not self._out
        self._out.append(data)
        self._out_bytes += len(data)
        if first:
            self.server.touched(self)

    def flush(self) -> None:
        """Send what this turn queued, as one write."""
        out = self._out
        if not out:
            return
        self._out = []
        self._out_bytes = 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            if self._pending and transport.get_write_buffer_size() <= _BACKLOG:
                # Requests parked behind this turn's held output (it counts as backlog) that
                # the transport took at once: no pause_writing/resume_writing will come to
                # serve them, so serve them now (their answers go out at the next turn's end).
                self.resume_writing()

    def backlog(self) -> int:
        """Bytes not sent yet: queued for this turn's flush, and in the transport's buffer."""
        if self.transport is None:
            return self._out_bytes
        return self._out_bytes + self.transport.get_write_buffer_size()

    def keep_alive(self) -> None:
        """Send a keep-alive event (also how a dead peer gets noticed)."""
        if self.listener is not None and not self.listener.closed:
            self.listener.push(KEEP_ALIVE)

    def expire(self, now: float) -> None:
        """Close the connection if a request is too slow to arrive, or it sat idle too long."""
        if self.done or self.listener is not None or self.transport is None:
            return
        config = self.db.config
        if self.request_began is not None:
            if now - self.request_began > config.request_timeout:
                self._fail(error(408, f"Request not complete within {config.request_timeout} s"))
        elif (
            not self._pending
            and self.backlog() == 0
            and now - self.last_active > config.idle_timeout
        ):
            self._close()

    def _close(self) -> None:
        """Close once what is queued is sent (the transport sends its buffer first)."""
        self.done = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def _fail(self, answer: Response) -> None:
        self.done = True
        if self.transport is not None and not self.transport.is_closing():
            self._send(encode_response(answer, keep_alive=False))
            self._close()


class FastServer:
    """Accepts connections on a bound socket and serves a LocalDb until stopped."""

    def __init__(self, db: LocalDb, unix_path: bytes | None = None) -> None:
        self.db = db
        self.unix_path = unix_path  # where the Unix socket is (told to clients that ask)
        self.connections: set[HttpConnection] = set()
        self.streams: set[HttpConnection] = set()
        self.per_peer: dict[str, int] = {}
        self.now = time.monotonic
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set while serving
        self._touched: list[HttpConnection] = []  # connections with output queued this turn

    def touched(self, conn: HttpConnection) -> None:
        """``conn`` queued its first output this turn: flush it when the turn ends."""
        if self._loop is None:  # driven by hand (tests), not by a loop: no turn to wait for
            conn.flush()
            return
        if not self._touched:
            # call_soon runs after every I/O callback of this loop iteration: all requests
            # read in this turn are served (and their events queued) before anything is sent.
            self._loop.call_soon(self.flush)
        self._touched.append(conn)

    def flush(self) -> None:
        """Send each connection's output of this turn, in the order they were first written to
        (a commit's events are queued before its answer, so they usually leave first too, as
        before; nothing relies on it: they go to other connections, read by other processes)."""
        touched, self._touched = self._touched, []
        for conn in touched:
            conn.flush()

    def join(self, conn: HttpConnection) -> bool:
        """Count a new connection; False when its peer already has the most it may."""
        self.connections.add(conn)
        count = self.per_peer.get(conn.peer, 0) + 1
        self.per_peer[conn.peer] = count
        return count <= self.db.config.max_client_connections

    def leave(self, conn: HttpConnection) -> None:
        """Forget a closed connection."""
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_peer.get(conn.peer, 1) - 1
            if left > 0:
                self.per_peer[conn.peer] = left
            else:
                self.per_peer.pop(conn.peer, None)

    async def serve(self, sock: socket.socket, unix_sock: socket.socket | None = None) -> None:
        """Serve until ``stop()``; then close streams and connections."""
        loop = self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._server = await loop.create_server(lambda: HttpConnection(self), sock=sock)
        unix_server = None
        if unix_sock is not None:
            unix_server = await loop.create_unix_server(
                lambda: HttpConnection(self), sock=unix_sock
            )
        ticker = asyncio.ensure_future(self._keep_alives())
        sweeper = asyncio.ensure_future(self._expire_slow_and_idle())
        try:
            await self._stopping.wait()
        finally:
            ticker.cancel()
            sweeper.cancel()
            self._server.close()
            if unix_server is not None:
                unix_server.close()
            self.db.shutdown()
            self.flush()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def stop(self, *_: Any) -> None:
        """Ask ``serve`` to return (signal-handler safe within the loop)."""
        if self._stopping is not None:
            self._stopping.set()

    async def _keep_alives(self) -> None:
        interval = self.db.config.keep_alive
        while True:
            await asyncio.sleep(interval)
            for conn in list(self.streams):
                conn.keep_alive()

    async def _expire_slow_and_idle(self) -> None:
        config = self.db.config
        interval = max(0.05, min(config.request_timeout, config.idle_timeout) / 4)
        while True:
            await asyncio.sleep(interval)
            now = self.now()
            for conn in list(self.connections):
                conn.expire(now)
