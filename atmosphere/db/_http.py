"""The client's one HTTP transport: pooled keep-alive connections, and streams.

Every request the client makes goes through ``RestTransport``: reads, queries, writes,
conditional writes and the SSE streams (``open_stream``: a connection of its own per stream).
Chosen by measurement (``python -m bench transport``, 2-core dev machine, medians of 5 rounds
under load): a small PATCH costs 0.16 ms of client CPU and 0.27 ms p50 here, 0.27 / 0.41 ms
through urllib3's ``HTTPConnectionPool``, 0.38 / 0.49 ms through its ``PoolManager`` and
0.96 / 1.4 ms through ``requests`` (firebase-admin's stack: environment and proxy lookups per
call); a small GET 0.15 / 0.22 ms here against 0.28 / 0.35 ms through the urllib3 pool.
Every job is two or three such writes, in makers, clouds and the dispatcher alike. Since
then requests are written and answers read by ``_wire.py`` on the connections ``http.client``
opens (it cost a third of that CPU); streams stay on ``http.client``.
firebase-admin and google-auth only supply the credential (and refresh its token).

An embedded server on this machine also listens on a Unix socket in its data directory, which
costs less CPU per send and receive than loopback TCP, in the server and here. For a loopback
``http`` URL the first request asks for it (``X-Atmosphere-Socket``; another server ignores
the header), and later connections, streams too, go through it when it is a socket of this
user's. One that cannot connect sends the client back to TCP, which asks again.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import stat
import struct
import threading
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import orjson
from google.auth.transport.requests import Request

from atmosphere.errors import DatabaseError, PermissionDenied, RequestRefused
from atmosphere.hosts import is_loopback

from . import _wire

# The connection broke. If it broke while the request was being sent, the server cannot have
# acted on it (it never read all of it), so sending again is safe; once the whole request is
# out, the server may have executed it before the connection died, and only a request that
# has the same effect twice may be sent again (see _repeatable).
_BROKEN = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# Statuses that refuse the request itself (bad data, too large): the same request always fails.
_REFUSED = frozenset({400, 413, 414, 422})
_MAX_IDLE = 32  # idle connections kept; more are closed when given back
# Real Firebase may send a stream to the server that holds the data (a 307 to another host).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_STREAM_HEADERS = {
    "Accept": "text/event-stream",
    "Cache-Control": "no-cache",
    "Accept-Encoding": "identity",
}
# A stream's reads: what one read may return, and what it allocates first (a read of 1 MB cost
# about 25 us more than one of 64 KiB, however little arrived: the buffer is made, then cut).
_READ_SIZE = 64 * 1024
# Asks an embedded server where its Unix socket is; its answer names it in the same header.
_SOCKET_HEADER = "X-Atmosphere-Socket"
_SOCKET_ANSWER = _SOCKET_HEADER.lower()


class RestTransport:
    """Sends REST requests to one database over pooled persistent connections (thread-safe)."""

    def __init__(self, base_url: str, params: dict[str, str], credential: Any, timeout: float):
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._proxy = _proxy_of(self._host, self._https)
        self._host_header = _wire.host_header(self._host, self._port, self._https)
        self._query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
        self._credential = credential
        self._timeout = timeout
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        # Idle connections, most recently used last; one is taken per request and given back
        # after, so connections number the most concurrent requests, however many threads
        # come and go (a cloud runs each job on a thread of its own).
        self._idle: list[http.client.HTTPConnection] = []
        self._connections: set[http.client.HTTPConnection] = set()  # idle and in use
        self._closed = False
        # The local server's Unix socket: asked for while _ask_socket, used once known.
        self._ask_socket = not self._https and self._proxy is None and is_loopback(self._host)
        self._unix: str | None = None

    def request(
        self,
        method: str,
        segments: Sequence[str],
        body: bytes | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers, body). Raises DatabaseError on failure."""
        path = _path(segments)
        target = self._target(path, query)
        send_headers = {"Authorization": self._authorization(), **(headers or {})}
        if body is not None:
            send_headers["Content-Type"] = "application/json"
        repeatable = _repeatable(method, body, send_headers)
        asked = self._ask_socket
        if asked:
            send_headers[_SOCKET_HEADER] = "?"
        refreshed = False
        for attempt in (1, 2, 3):
            conn = self._checkout()
            if isinstance(conn, _UnixConnection) and not self._connected(conn):
                continue  # back on TCP (nothing was sent)
            sent = False
            try:
                head = _wire.request_bytes(method, target, self._host_header, send_headers, body)
                _wire.send(conn, head, body)
                sent = True
                status, answer_headers, data = _wire.receive(conn, method)
            except _BROKEN as error:
                self._discard(conn)
                if attempt == 3 or (sent and not repeatable):
                    raise DatabaseError(
                        f"{method} {path}: connection lost"
                        + (" after the request was sent; it may have been applied" if sent else "")
                        + f" ({error})"
                    ) from error
                continue
            except (OSError, http.client.HTTPException) as error:
                self._discard(conn)
                raise DatabaseError(
                    f"{method} {path}: the database is unreachable ({error})"
                ) from error
            except BaseException:
                self._discard(conn)  # interrupted half way: the connection's state is unknown
                raise
            self._checkin(conn)
            if asked:
                self._learn_socket(answer_headers.get(_SOCKET_ANSWER))
                asked = False
                send_headers.pop(_SOCKET_HEADER, None)
            if status == 401 and not refreshed and not _denied_by_rules(data):
                # The credential, not the rules: an expired token, say (a refresh is a round
                # trip to Google's OAuth server, not worth making for a rules denial).
                self._refresh()
                refreshed = True
                send_headers["Authorization"] = self._authorization()
                continue
            return status, answer_headers, data
        raise DatabaseError(f"{method} {path}: no response")  # pragma: no cover

    def check(self, method: str, segments: Sequence[str], status: int, data: bytes) -> None:
        """Raise the error a non-2xx answer stands for, with the server's message."""
        if 200 <= status < 300:
            return
        message = _error_message(data)
        where = f"cannot {method} {'/' + '/'.join(segments)!r}"
        if status in (401, 403):
            raise PermissionDenied(f"{where}: {message}", status=status)
        if status in _REFUSED:
            raise RequestRefused(f"{where}: HTTP {status}: {message}", status=status)
        raise DatabaseError(f"{where}: HTTP {status}: {message}", status=status)

    def open_stream(
        self, segments: Sequence[str], connect_timeout: float, idle_timeout: float
    ) -> EventStream:
        """Open an SSE stream of ``segments`` on a connection of its own (never pooled).

        Follows redirects and refreshes an expired credential once; raises DatabaseError
        (PermissionDenied on a denial) for any answer but a 200 event stream, and lets
        network errors (OSError, HTTPException) through for the caller's reconnect loop.
        """
        if self._closed:
            raise DatabaseError("the database is closed")
        url = f"{'https' if self._https else 'http'}://{_netloc(self._host, self._port)}"
        url += self._target(_path(segments), "")
        refreshed = False
        for _ in range(_MAX_REDIRECTS + 2):
            parts = urlsplit(url)
            https = parts.scheme == "https"
            host, port = parts.hostname or self._host, parts.port or (443 if https else 80)
            headers = dict(_STREAM_HEADERS)
            ours = (host, port) == (self._host, self._port)
            if https or ours:
                # Kept across Firebase's redirects (as firebase-admin's KeepAuthSession does),
                # but never sent in clear text to a host we were not configured with.
                headers["Authorization"] = self._authorization()
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            asked = ours and self._ask_socket
            if asked:
                headers[_SOCKET_HEADER] = "?"
            conn, response, sock = self._ask_stream(
                host, port, https, ours, target, headers, (connect_timeout, idle_timeout)
            )
            if asked:
                self._learn_socket(response.getheader(_SOCKET_ANSWER))
            if response.status == 200:
                kind = response.getheader("Content-Type", "")
                if kind.startswith("text/event-stream"):
                    return EventStream(conn, response, sock)
                conn.close()
                raise DatabaseError(f"expected an event stream from {parts.path}, got {kind!r}")
            try:
                data = response.read(64 * 1024)
            finally:
                conn.close()
            location = response.getheader("Location")
            if response.status in _REDIRECTS and location:
                url = urljoin(url, location)
            elif response.status == 401 and not refreshed and not _denied_by_rules(data):
                self._refresh()
                refreshed = True
            else:
                self.check("GET", segments, response.status, data)  # raises for a non-2xx
                raise DatabaseError(f"cannot stream {_path(segments)!r}: HTTP {response.status}")
        raise DatabaseError(f"cannot stream {_path(segments)!r}: too many redirects")

    def _ask_stream(
        self,
        host: str,
        port: int,
        https: bool,
        ours: bool,
        target: str,
        headers: dict[str, str],
        timeouts: tuple[float, float],
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
        """Connect (through our server's Unix socket if known), send the GET, read the head."""
        unix = self._unix if ours and not https else None
        if unix is not None:
            conn: http.client.HTTPConnection = _UnixConnection(unix, host, port, timeouts[0])
            try:
                conn.connect()
            except OSError:
                self._forget_socket(unix)  # could not connect: again on TCP
            else:
                return conn, *_ask_stream(conn, target, headers, timeouts[1])
        conn = _connection(host, port, https, timeouts[0], _proxy_of(host, https))
        return conn, *_ask_stream(conn, target, headers, timeouts[1])

    def refresh(self) -> None:
        """Refresh the credential now (the server said it was revoked)."""
        self._refresh()

    def close(self) -> None:
        """Close every connection this transport opened; later requests fail."""
        with self._lock:
            self._closed = True
            connections = list(self._connections)
            self._connections.clear()
            self._idle.clear()
        for conn in connections:
            conn.close()

    # -- internals ---------------------------------------------------------------------

    def _checkout(self) -> http.client.HTTPConnection:
        stale = []
        try:
            with self._lock:
                if self._closed:
                    raise DatabaseError("the database is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if not _dropped_by_peer(conn):
                        return conn
                    # Closed by the server while idle: found out now, before a request is
                    # sent on it, not after, when a non-repeatable one could not be resent.
                    self._connections.discard(conn)
                    stale.append(conn)
                conn = self._new_connection()  # connects on first use
                self._connections.add(conn)
                return conn
        finally:
            for conn in stale:
                conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._unix is not None:
            return _UnixConnection(self._unix, self._host, self._port, self._timeout)
        return _connection(self._host, self._port, self._https, self._timeout, self._proxy)

    def _learn_socket(self, path: str | None) -> None:
        """The server's answer to where its Unix socket is: use it from now on if it is ours."""
        self._ask_socket = False
        if path is None or not _own_socket(path):
            return
        with self._lock:
            self._unix = path
            idle, self._idle = self._idle, []  # TCP ones: closed, so new ones take the socket
            self._connections.difference_update(idle)
        for conn in idle:
            conn.close()

    def _connected(self, conn: _UnixConnection) -> bool:
        """Connect ``conn`` if it is not; False (and back to TCP, to ask again) if it cannot."""
        if conn.sock is not None:
            return True
        try:
            conn.connect()
        except OSError:
            self._discard(conn)
            self._forget_socket(conn.unix_path)
            return False
        return True

    def _forget_socket(self, path: str) -> None:
        """``path`` did not connect (the server stopped; a new one has a socket of its own)."""
        with self._lock:
            if self._unix == path:
                self._unix = None
                self._ask_socket = True

    def _target(self, path: str, query: str) -> str:
        params = "&".join(p for p in (query, self._query) if p)
        return f"{path}?{params}" if params else path

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
            self._connections.discard(conn)
        conn.close()

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connections.discard(conn)
        conn.close()

    def _authorization(self) -> str:
        credential = self._credential
        if not getattr(credential, "valid", True):
            with self._refresh_lock:  # one OAuth round trip, however many threads noticed
                if not getattr(credential, "valid", True):
                    self._refresh()
        return f"Bearer {credential.token}"

    def _refresh(self) -> None:
        try:
            self._credential.refresh(Request())
        except Exception as error:  # noqa: BLE001 - any refresh failure means: not authorised
            raise PermissionDenied(f"the credentials were refused ({error})") from error


def probe(url: str, timeout: float) -> tuple[int, bytes] | None:
    """One GET of ``url`` (plain http, a local server) on a connection of its own:
    (status, body), or None when nothing answers within ``timeout``."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = _connection(parts.hostname or "127.0.0.1", parts.port or 80, False, timeout, None)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class EventStream:
    """An open SSE response and the connection it owns (see ``RestTransport.open_stream``)."""

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sock: socket.socket,
    ) -> None:
        self._conn = conn
        self._response = response
        # Not conn.sock: http.client hands a close-delimited body's socket to the response.
        self._sock = sock
        # A chunked body (what the embedded server sends) is decoded here, every chunk a read
        # brings at once; any other (a body ended by the close) is read through http.client.
        self._chunks = _wire.ChunkDecoder() if response.chunked else None
        self._fp = response.fp

    def read(self) -> bytes:
        """Whatever the socket has (up to 64 KiB), waiting for at least a byte; b"" at the end.

        Raises:
            http.client.IncompleteRead: the connection ended within a chunk, or a bad chunk.
        """
        chunks = self._chunks
        if chunks is None:
            return self._response.read1(_READ_SIZE)
        while not chunks.ended:
            data = self._fp.read1(_READ_SIZE)
            if not data:
                raise http.client.IncompleteRead(b"")
            payload = chunks.feed(data)
            if payload:
                return payload
        return b""

    def abort(self) -> None:
        """Wake a read blocked in another thread: it returns or raises at once."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def close(self) -> None:
        """Close the connection (a stream is never reused)."""
        self._response.close()
        self._conn.close()


class _UnixConnection(http.client.HTTPConnection):
    """A connection to a local server's Unix socket; requests still name ``host:port``."""

    def __init__(self, path: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
            _check_peer(sock, self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _check_peer(sock: socket.socket, path: str) -> None:
    """Refuse a socket whose listening process is another user's: the path was checked when
    it was learned, but the file may have been replaced since (a server restarted, another
    user's socket or symlink put in its place), and our credential goes out on it next.

    Raises:
        ConnectionRefusedError: the peer is not ours (the client falls back to TCP).
    """
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # not Linux: the path's owner, checked when learned, must do
        return
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, 12))
    if uid != os.getuid():
        raise ConnectionRefusedError(f"{path} is served by another user's process (uid {uid})")


def _own_socket(path: str) -> bool:
    """Whether ``path`` is a Unix socket of this user's: one we may send our credential to
    (the server that named it has it already; another user's server must not get it)."""
    if not os.path.isabs(path):
        return False
    try:
        st = os.lstat(path)  # the socket itself, not what a symlink there points to
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid()


def _path(segments: Sequence[str]) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments) + ".json"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy_of(host: str, https: bool) -> tuple[str, int] | None:
    # Real Firebase behind a corporate proxy; plain http is loopback or a private emulator.
    return _proxy_for("https", host) if https else None


def _connection(
    host: str, port: int, https: bool, timeout: float, proxy: tuple[str, int] | None
) -> http.client.HTTPConnection:
    """A connection (not yet open) to ``host``, through ``proxy`` if one is given."""
    cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
    if proxy is None:
        return cls(host, port, timeout=timeout)
    # Through an HTTP proxy (HTTPS_PROXY / HTTP_PROXY, honouring NO_PROXY), as requests and
    # so firebase-admin would go: a CONNECT tunnel to the database host.
    conn = cls(proxy[0], proxy[1], timeout=timeout)
    conn.set_tunnel(host, port)
    return conn


def _ask_stream(
    conn: http.client.HTTPConnection, target: str, headers: dict[str, str], idle_timeout: float
) -> tuple[http.client.HTTPResponse, socket.socket]:
    """Connect (within the connection's timeout), send the GET, read the answer's head."""
    try:
        if conn.sock is None:
            conn.connect()
        sock = conn.sock
        assert sock is not None
        sock.settimeout(idle_timeout)  # from now on: a silent stream is a dead one
        conn.request("GET", target, headers=headers)
        return conn.getresponse(), sock
    except BaseException:
        conn.close()
        raise


def _repeatable(method: str, body: bytes | None, headers: dict[str, str]) -> bool:
    """Whether sending this request twice has the effect of sending it once."""
    if method == "GET":
        return True
    if method not in ("PUT", "DELETE") or any(k.lower() == "if-match" for k in headers):
        return False  # a POST adds a child each time; a conditional write fails the 2nd time
    return body is None or b'".sv"' not in body  # server values (increment) are not


def _dropped_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection has been closed (or written to) by the server."""
    sock = conn.sock
    if sock is None:
        return False  # not connected: http.client connects on the next request
    poller = select.poll()  # not select(): it fails on descriptors numbered 1024 and up
    try:
        poller.register(sock, select.POLLIN)
        events = poller.poll(0)
    except (OSError, ValueError):
        return True
    return bool(events)  # an idle connection has nothing to read unless it was closed


def _denied_by_rules(data: bytes) -> bool:
    return _error_message(data) == "Permission denied"


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy the environment names for ``scheme://host``, if any."""
    if urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or 8080


def _error_message(data: bytes) -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data[:200].decode(errors="replace") or "no message"
    if isinstance(parsed, dict) and parsed.get("error"):
        return str(parsed["error"])
    return data[:200].decode(errors="replace")
