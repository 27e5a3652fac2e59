"""StreamListener: a Firebase SSE subscription read in chunks, with reconnect and resync.

firebase-admin's own ``listen()`` reads the stream one character at a time (a 1 MB event takes
seconds) and its thread dies silently on an HTTP error. This one opens the stream through the
client's transport (``RestTransport.open_stream``), reads whatever the socket has, parses
incrementally, detects a silent dead stream with a read timeout, and
reconnects with exponential backoff and jitter. Every new connection starts with a ``put "/"``
of the whole value (the resync); ``on_status(True)`` follows it, ``on_status(False)`` reports a
drop; ``on_batch()`` follows the events of each read. Callbacks run on the listener's daemon
thread, one at a time, in stream order.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from atmosphere._redact import redact

from ._http import EventStream, RestTransport
from ._sse import SSEEvent, SSEParser
from .base import BatchCallback, EventCallback, StatusCallback

_log = logging.getLogger(__name__)

# How long close() waits for a callback in flight, and for the stream's thread to end.
CLOSE_WAIT = 2.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.05
    maximum: float = 5.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``attempt`` (0-based): half fixed, half random."""
        base = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        return base / 2 + base / 2 * rand()


DEFAULT_BACKOFF = Backoff()

# A refused connection means nothing listens there: a local server restarting (the embedded
# one after a crash), not an overloaded one, and another try costs both sides next to nothing.
# Backing off to the maximum then only delays the reconnect: in a chaos run, clients came back
# 0.1-2.8 s after the restarted server listened.
REFUSED_RETRY = Backoff(initial=0.25, maximum=0.25)


def reconnect_delay(
    backoff: Backoff, attempt: int, refused: bool, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before reconnect number ``attempt`` (0-based): ``backoff``'s, but at most a
    quarter of a second (jittered) after a refused connection."""
    wait = backoff.delay(attempt, rand)
    return min(wait, REFUSED_RETRY.delay(0, rand)) if refused else wait


class _Reconnect(Exception):
    """The current stream is over; connect again (after a backoff unless ``at_once``)."""

    def __init__(self, reason: str, *, at_once: bool = False) -> None:
        super().__init__(reason)
        self.at_once = at_once


def decode_event(event: SSEEvent) -> tuple[str, str, Any] | None:
    """A put or patch event's (kind, path, data); None for any other event.

    Raises:
        ValueError: a put or patch whose data is not ``{"path": ..., "data": ...}`` JSON.
    """
    kind = event.event
    if kind != "put" and kind != "patch":
        return None
    try:
        payload = orjson.loads(event.data)  # 2-3x the stdlib on big snapshots
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or "path" not in payload:
        raise ValueError(f"malformed {kind} event: {event.data[:200]!r}")
    return kind, str(payload["path"]), payload.get("data")


class StreamListener:
    """A running subscription to the node at ``segments``, opened through ``transport``."""

    def __init__(
        self,
        transport: RestTransport,
        segments: Sequence[str],
        on_event: EventCallback,
        *,
        on_status: StatusCallback | None = None,
        on_batch: BatchCallback | None = None,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        refresh_credential: Callable[[], None] | None = None,
        on_closed: Callable[[StreamListener], None] | None = None,
    ) -> None:
        """``on_closed``: told once when it closes (its owner's list lets go of it)."""
        self._transport = transport
        self._on_closed = on_closed
        self._segments = list(segments)
        self._name = "/" + "/".join(self._segments)
        self._on_event = on_event
        self._on_status = on_status
        self._on_batch = on_batch
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._refresh_credential = refresh_credential or transport.refresh
        self._callback_lock = threading.RLock()
        self._response_lock = threading.Lock()
        self._response: EventStream | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._reported_up = False
        self.last_error: str | None = None
        self.connections = 0  # streams opened so far (1 + reconnects)
        self._thread = threading.Thread(target=self._loop, name=f"stream:{self._name}", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        """True while a stream is open and its initial snapshot has been delivered."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the initial snapshot has been delivered; False on timeout."""
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop the stream and its thread; no callback starts after this returns, and one in
        flight is waited for up to ``CLOSE_WAIT`` seconds (a callback may run a job: a default
        cloud runs its handler on its inbox stream's thread, and a hung handler must not hang
        the process that closes its database). Closing again returns at once."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._abort_response()
        if self._callback_lock.acquire(timeout=CLOSE_WAIT):
            self._callback_lock.release()  # a callback in flight ended; none can start now
        else:
            _log.warning(
                "stream %s closed while a callback still runs (%.0f s); not waiting for it",
                self._name,
                CLOSE_WAIT,
            )
        self._connected.clear()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=CLOSE_WAIT)
        if self._on_closed is not None:
            self._on_closed(self)

    # -- the listener thread -------------------------------------------------------------

    def _loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            refused = False
            try:
                self._stream_once()
                reason, at_once = "the server closed the stream", False
            except _Reconnect as why:
                reason, at_once = str(why), why.at_once
            except Exception as error:  # any network failure: reconnect
                reason, at_once = f"{type(error).__name__}: {error}", False
                refused = isinstance(error, ConnectionRefusedError)
            if self._stop.is_set():
                return
            if self._connected.is_set():
                attempt = 0  # the stream worked: start the backoff again from the bottom
            self._drop(reason, first_failure=attempt == 0)
            wait = reconnect_delay(self._backoff, attempt, refused)
            if not at_once and self._stop.wait(wait):
                return
            attempt += 1

    def _stream_once(self) -> None:
        response = self._transport.open_stream(
            self._segments, self._connect_timeout, self._idle_timeout
        )
        with self._response_lock:
            self._response = response
        try:
            if self._stop.is_set():
                return
            self.connections += 1
            self._read(response)
        finally:
            with self._response_lock:
                self._response = None
            response.close()

    def _read(self, response: EventStream) -> None:
        parser = SSEParser()
        first = True
        while not self._stop.is_set():
            chunk = response.read()
            if not chunk:
                return
            events = parser.feed(chunk)
            for event in events:
                self._handle(event, first)
                first = first and event.event not in ("put", "patch")
            if events and self._on_batch is not None:
                self._batch_done(self._on_batch)

    def _handle(self, event: SSEEvent, first: bool) -> None:
        try:
            decoded = decode_event(event)  # None: not a put or a patch
        except ValueError as error:
            raise _Reconnect(str(error)) from None
        kind = event.event
        if decoded is not None:
            self._deliver(*decoded)
            if first:
                self._up()
        elif kind == "cancel":
            raise _Reconnect(f"the server cancelled the stream: {event.data}")
        elif kind == "auth_revoked":
            self._refresh()
            raise _Reconnect(f"credential revoked: {event.data}", at_once=True)
        # keep-alive and unknown events carry nothing for us

    # -- callbacks, always under the callback lock and never after close() --------------

    def _deliver(self, kind: str, path: str, data: Any) -> None:
        with self._callback_lock:
            if self._stop.is_set():
                return
            try:
                self._on_event(kind, path, data)
            except Exception:  # a broken callback must not kill the stream
                _log.exception("listener callback failed for %s %s", kind, path)

    def _batch_done(self, on_batch: BatchCallback) -> None:
        with self._callback_lock:
            if self._stop.is_set():
                return
            try:
                on_batch()
            except Exception:  # a broken callback must not kill the stream
                _log.exception("listener batch callback failed")

    def _up(self) -> None:
        with self._callback_lock:
            if self._stop.is_set():
                return
            self.last_error = None
            self._connected.set()
            self._reported_up = True
            self._status(True)

    def _drop(self, reason: str, *, first_failure: bool) -> None:
        reason = redact(reason)  # request errors quote the URL, query (and any token) included
        with self._callback_lock:
            self.last_error = reason
            was_up = self._reported_up
            self._connected.clear()
            self._reported_up = False
            if was_up and not self._stop.is_set():
                _log.info("stream %s dropped: %s", self._name, reason)
                self._status(False)
            elif first_failure:  # say it once per outage, not on every retry
                _log.warning("cannot stream %s (retrying): %s", self._name, reason)
            else:
                _log.debug("stream %s not connected: %s", self._name, reason)

    def _status(self, up: bool) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(up)
        except Exception:
            _log.exception("listener status callback failed")

    def _refresh(self) -> None:
        try:
            self._refresh_credential()
        except Exception as error:
            _log.warning("could not refresh the credential: %s", error)

    def _abort_response(self) -> None:
        """Wake the listener thread out of a blocking read (called from another thread)."""
        with self._response_lock:
            response = self._response
        if response is not None:
            response.abort()
