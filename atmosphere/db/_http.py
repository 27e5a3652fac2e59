"""The hot-path REST transport: a pool of keep-alive ``http.client`` connections.

firebase-admin still resolves the URL, the namespace and the credential; this module only sends
the bytes. Measured on the 2-core dev machine (bench part ``jobs``), a small PATCH through
``firebase_admin.db`` costs about 0.65 ms of client CPU, most of it in ``requests`` (environment
and proxy lookups per call) and per-call reference building; the same PATCH here costs about
0.06 ms. Every job is two or three such writes, in makers, clouds and the dispatcher alike.
"""

from __future__ import annotations

import http.client
import select
import threading
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from google.auth.transport.requests import Request

from atmosphere.errors import DatabaseError, PermissionDenied, RequestRefused

# The connection broke. If it broke while the request was being sent, the server cannot have
# acted on it (it never read all of it), so sending again is safe; once the whole request is
# out, the server may have executed it before the connection died, and only a request that
# has the same effect twice may be sent again (see _repeatable).
_BROKEN = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# Statuses that refuse the request itself (bad data, too large): the same request always fails.
_REFUSED = frozenset({400, 413, 414, 422})
_MAX_IDLE = 32  # idle connections kept; more are closed when given back


class RestTransport:
    """Sends REST requests to one database over pooled persistent connections (thread-safe)."""

    def __init__(self, base_url: str, params: dict[str, str], credential: Any, timeout: float):
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        # Real Firebase behind a corporate proxy; plain http is loopback or a private emulator.
        self._proxy = _proxy_for("https", self._host) if self._https else None
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

    def request(
        self,
        method: str,
        segments: Sequence[str],
        body: bytes | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers, body). Raises DatabaseError on failure."""
        path = "/" + "/".join(quote(s, safe="") for s in segments) + ".json"
        params = "&".join(p for p in (query, self._query) if p)
        target = f"{path}?{params}" if params else path
        send_headers = {"Authorization": self._authorization(), **(headers or {})}
        if body is not None:
            send_headers["Content-Type"] = "application/json"
        repeatable = _repeatable(method, body, send_headers)
        refreshed = False
        for attempt in (1, 2, 3):
            conn = self._checkout()
            sent = False
            try:
                conn.request(method, target, body=body, headers=send_headers)
                sent = True
                response = conn.getresponse()
                data = response.read()
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
            if response.status == 401 and not refreshed and not _denied_by_rules(data):
                # The credential, not the rules: an expired token, say (a refresh is a round
                # trip to Google's OAuth server, not worth making for a rules denial).
                self._refresh()
                refreshed = True
                send_headers["Authorization"] = self._authorization()
                continue
            return response.status, dict(response.getheaders()), data
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
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        if self._proxy is None:
            return cls(self._host, self._port, timeout=self._timeout)
        # Through an HTTP proxy (HTTPS_PROXY / HTTP_PROXY, honouring NO_PROXY), as requests
        # and so firebase-admin would go: a CONNECT tunnel to the database host.
        proxy_host, proxy_port = self._proxy
        conn = cls(proxy_host, proxy_port, timeout=self._timeout)
        conn.set_tunnel(self._host, self._port)
        return conn

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
