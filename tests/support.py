"""Helpers for tests that run real processes: bounded waits, namespaces, SDK apps, raw HTTP/SSE.

The processes themselves (``start_db_server``, ``ServerProcess``, ``AtmosphereProcess``,
``free_port``) live in ``devkit.procs``, shared with bench and chaos; they are re-exported here
for the tests that import them from this module. ``sdk_app(url, ns)`` makes a firebase-admin app
in emulator mode (``http://127.0.0.1:PORT?ns=NS``, token ``owner``, no Google credentials).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from devkit.procs import (
    LISTENING,
    AtmosphereProcess,
    ServerProcess,
    db_command,
    free_port,
    start_db_server,
)

__all__ = [
    "LISTENING",
    "AtmosphereProcess",
    "RawClient",
    "ServerProcess",
    "SseStream",
    "db_command",
    "free_port",
    "sdk_app",
    "start_db_server",
    "unique_ns",
    "wait_until",
]


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str = "", *, interval: float = 0.01
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"condition not met within {timeout:.1f}s: {name}")
        time.sleep(interval)


def unique_ns(prefix: str = "t") -> str:
    """A fresh namespace name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sdk_app(url: str, ns: str, name: str | None = None, **options: Any) -> Any:
    """A firebase_admin App in emulator mode for ``url?ns=ns``; delete it with firebase_admin.delete_app."""
    import firebase_admin

    opts: dict[str, Any] = {"databaseURL": f"{url}?ns={ns}", **options}
    return firebase_admin.initialize_app(options=opts, name=name or f"app-{uuid.uuid4().hex}")


class RawClient:
    """Plain HTTP against the server, for what the SDK cannot express; ``owner`` by default."""

    def __init__(self, base_url: str, ns: str, auth: str | None = "owner") -> None:
        import requests

        self.base_url = base_url
        self.ns = ns
        self.auth = auth
        self.session = requests.Session()

    def url(self, path: str, query: str = "") -> str:
        """``/a/b.json?<query>&ns=<ns>``; ``query`` is sent as written (no re-encoding)."""
        q = f"{query}&ns={self.ns}" if query else f"ns={self.ns}"
        return f"{self.base_url}{path}?{q}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """One request; returns the ``requests.Response``."""
        import orjson

        h = dict(headers or {})
        if self.auth is not None and "Authorization" not in h:
            h["Authorization"] = f"Bearer {self.auth}"
        data = body
        if json_body is not None:
            data = orjson.dumps(json_body)
        return self.session.request(method, self.url(path, query), data=data, headers=h, timeout=30)

    def get(self, path: str, query: str = "", **kw: Any) -> Any:
        """GET."""
        return self.request("GET", path, query=query, **kw)

    def put(self, path: str, value: Any, query: str = "", **kw: Any) -> Any:
        """PUT a JSON value (``None`` is sent as ``null``)."""
        import orjson

        return self.request("PUT", path, body=orjson.dumps(value), query=query, **kw)

    def close(self) -> None:
        """Close the session."""
        self.session.close()


class SseStream:
    """A raw SSE connection read in chunks by a thread; events land in ``events`` (a queue).

    Each event is ``(name, data_text)``; ``raw_chunks`` keeps the bytes as received.
    """

    def __init__(
        self, base_url: str, path: str, ns: str, auth: str | None = "owner", query: str = ""
    ) -> None:
        import requests

        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.raw_chunks: list[bytes] = []
        self.session = requests.Session()
        headers = {"Accept": "text/event-stream"}
        if auth is not None:
            headers["Authorization"] = f"Bearer {auth}"
        q = f"{query}&ns={ns}" if query else f"ns={ns}"
        self.response = self.session.get(
            f"{base_url}{path}?{q}", headers=headers, stream=True, timeout=30
        )
        self.status = self.response.status_code
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                self.raw_chunks.append(chunk)
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    name, data = "", ""
                    for line in block.decode("utf-8").split("\n"):
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            data = line[6:]
                    self.events.put((name, data))
        except Exception:  # noqa: BLE001 - the connection was closed under us: that ends it
            pass
        finally:
            self.ended.set()

    def next(self, timeout: float = 5.0, skip_keep_alive: bool = True) -> tuple[str, Any]:
        """The next event as ``(name, parsed data)``; raise ``queue.Empty`` on timeout."""
        import json

        deadline = time.monotonic() + timeout
        while True:
            name, data = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if skip_keep_alive and name == "keep-alive":
                continue
            return name, json.loads(data) if data else None

    def close(self) -> None:
        """Close the connection (shut the socket first: a read blocked in the thread holds the
        response's lock until a byte arrives)."""
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self.ended.wait(5)
        self.response.close()
        self.session.close()
