"""The ASGI front end: ``create_app(store, config)`` serves a LocalDb to any ASGI server.

The embedded server itself uses the faster httptools front end (``protocol.py``); this one
exists for in-process tests with an ASGI client and for embedding in other ASGI stacks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .events import KEEP_ALIVE, Listener
from .request import (
    BodyTooLarge,
    Disconnected,
    Receive,
    Scope,
    Send,
    headers_of,
    read_body,
    respond,
)
from .service import Config, LocalDb, Response, StreamRequest, error
from .store import Store

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class LocalDbApp:
    """The ASGI callable."""

    def __init__(self, db: LocalDb) -> None:
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query, headers = scope.get("query_string", b""), headers_of(scope)
        limit = self.db.config.max_body
        if scope["method"] not in ("GET", "HEAD"):
            verdict = self.db.admit(scope["method"], raw_path, query, headers)
            if isinstance(verdict, Response):
                await _send(send, verdict)  # before the body, which is never read
                return
            limit = verdict
        try:
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await _send(send, error(413, f"Request body exceeds {limit} bytes"))
            return
        except Disconnected:
            return  # nothing was done: the request never arrived whole
        answer = self.db.handle(scope["method"], raw_path, query, headers, body)
        if isinstance(answer, StreamRequest):
            await self._stream(answer, receive, send)
        else:
            await _send(send, answer)

    async def _stream(self, stream: StreamRequest, receive: Receive, send: Send) -> None:
        # Registered before the headers go out: a write right after listen() returns is seen.
        listener = self.db.subscribe(stream)
        listener.abort = _transport_aborter(send)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, listener))
        try:
            head = STREAM_HEADERS + stream.headers
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await _pump(listener, send, self.db.config.keep_alive)
        finally:
            self.db.unsubscribe(listener)
            watcher.cancel()


def create_app(store: Store, config: Config | None = None) -> LocalDbApp:
    """An ASGI app serving ``store`` (opened by the caller)."""
    return LocalDbApp(LocalDb(store, config))


async def _send(send: Send, answer: Response) -> None:
    await respond(send, answer.status, answer.body, answer.headers)


async def _pump(listener: Listener, send: Send, keep_alive: float) -> None:
    while True:
        if not await listener.wait(keep_alive):
            await send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
            continue
        if listener.frames and not listener.overflowed:
            data = listener.take()
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if listener.closed:
            with contextlib.suppress(Exception):
                if listener.cancel is not None:
                    msg = {"type": "http.response.body", "body": listener.cancel, "more_body": True}
                    await send(msg)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            return


def _transport_aborter(send: Send) -> Callable[[], None] | None:
    """A function that drops the connection under ``send`` (uvicorn's cycle), if reachable."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


async def _watch_disconnect(receive: Receive, listener: Listener) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            listener.close()
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
