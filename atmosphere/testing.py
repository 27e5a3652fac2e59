"""An in-memory ``Database`` for unit tests of cloud and dispatcher logic (never a runtime option).

It follows the real database's semantics: null deletes, empty objects vanish, lists come back
as lists, server values are resolved, multi-path updates are atomic, what the server refuses
is refused (``RequestRefused``: bad keys, data nested deeper than 32 levels counting the path,
a body over ``max_body``), and listeners receive the same events as the real stream (an
initial ``put "/"``, then ``put``/``patch`` in commit order) on one background thread per
listener.

Failure injection for reconnect tests: ``fail_writes`` / ``fail_reads`` make calls raise
``DatabaseError``; ``disconnect()`` drops every stream (``on_status(False)``, events are lost)
and ``reconnect()`` resyncs them (a fresh initial put, then ``on_status(True)``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from .db.base import BatchCallback, EventCallback, StatusCallback
from .db.tree import (
    Segments,
    check_path,
    get_in,
    join_path,
    normalise,
    render,
    resolve_server_values,
    select,
    set_in,
    split_path,
)
from .db.tree import shallow as _shallow  # get(shallow=...) takes a parameter of that name
from .errors import DatabaseError, RequestRefused
from .rtdb.pushid import PushIdGenerator
from .rtdb.tree import overlapping
from .rtdb.values import MAX_BODY_BYTES
from .types import JSON
from .wiretime import to_ms

_STOP = object()
_log = logging.getLogger(__name__)


class EventRecorder:
    """Collects a listener's callbacks (``on_event``, ``on_status``, ``on_batch``) for tests to
    wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.statuses: list[bool] = []
        self.batches: list[int] = []  # how many events had arrived at each on_batch()
        self._cond = threading.Condition()

    def on_event(self, kind: str, path: str, data: Any) -> None:
        """Record one event."""
        with self._cond:
            self.events.append((kind, path, data))
            self._cond.notify_all()

    def on_status(self, up: bool) -> None:
        """Record one status change."""
        with self._cond:
            self.statuses.append(up)
            self._cond.notify_all()

    def on_batch(self) -> None:
        """Record the end of one batch of events."""
        with self._cond:
            self.batches.append(len(self.events))
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], object], timeout: float = 15.0) -> None:
        """Block until ``predicate()`` holds; AssertionError (with what arrived) on timeout."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"waited {timeout}s: {self.events!r} {self.statuses!r}")

    def wait_events(self, n: int, timeout: float = 15.0) -> list[tuple[str, str, Any]]:
        """Block until ``n`` events have arrived; return all so far."""
        self.wait(lambda: len(self.events) >= n, timeout)
        with self._cond:
            return list(self.events)


class MemoryListener:
    """One subscription of a MemoryDatabase; delivers events on its own daemon thread."""

    def __init__(
        self,
        path: Segments,
        on_event: EventCallback,
        on_status: StatusCallback | None,
        on_close: Callable[[MemoryListener], None],
        on_batch: BatchCallback | None = None,
    ) -> None:
        self.path = path
        self._on_batch = on_batch
        self._on_close = on_close
        self._on_event = on_event
        self._on_status = on_status
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._closed = False
        self.streaming = True  # guarded by the database lock
        self._thread = threading.Thread(
            target=self._run, name=f"memory-listener:{join_path(path)}", daemon=True
        )
        self._thread.start()

    @property
    def connected(self) -> bool:
        """True once the latest initial snapshot has been delivered and the stream is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the initial snapshot has been delivered; False on timeout."""
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop delivering; no callback runs after this returns (unless called from one)."""
        self._closed = True
        self._on_close(self)
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _enqueue(self, item: Any) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        unbatched = False  # events delivered since the last on_batch()
        while True:
            item = self._queue.get()
            if item is _STOP or self._closed:
                return
            try:
                if unbatched and item[0] != "event":
                    unbatched = False
                    self._batch()  # a status or a drain() barrier ends a batch
                self._deliver(item)
                if item[0] == "event":
                    unbatched = not self._queue.empty()
                    if not unbatched:
                        self._batch()  # what was queued together has all been delivered
            except Exception:  # a broken callback must not kill the stream
                _log.exception("listener callback failed")

    def _batch(self) -> None:
        if self._on_batch is not None:
            self._on_batch()

    def _deliver(self, item: Any) -> None:
        tag = item[0]
        if tag == "event":
            self._on_event(item[1], item[2], item[3])
        elif tag == "status":
            if item[1]:
                self._connected.set()
            else:
                self._connected.clear()
            if self._on_status is not None:
                self._on_status(item[1])
        elif tag == "barrier":
            item[1].set()


class MemoryDatabase:
    """A thread-safe in-memory Firebase Realtime Database implementing ``Database``."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self._clock = clock
        self.max_body = max_body  # a bigger write body is refused (413), as the server does
        self._lock = threading.RLock()
        self._root: Any = None
        self._listeners: list[MemoryListener] = []
        self._ids = PushIdGenerator()
        self._closed = False
        self.fail_writes: bool | BaseException = False
        self.fail_reads: bool | BaseException = False
        self.writes = 0  # committed write requests, for assertions about batching

    # -- reads -------------------------------------------------------------------------

    def get(self, path: str, *, shallow: bool = False) -> JSON:
        """The value at ``path`` (None when absent); ``shallow`` gives children as True."""
        segs = self._path(path, reading=True)
        with self._lock:
            node = get_in(self._root, segs)
        return _shallow(node) if shallow else render(node)

    def query(
        self,
        path: str,
        *,
        order_by: str,
        start_at: JSON = None,
        end_at: JSON = None,
        equal_to: JSON = None,
        limit_to_first: int | None = None,
        limit_to_last: int | None = None,
    ) -> dict[str, JSON]:
        """Children of ``path`` ordered by ``order_by`` ("$key", "$value" or a child path)."""
        segs = self._path(path, reading=True)
        with self._lock:
            node = get_in(self._root, segs)
        kept = select(node, order_by, start_at, end_at, equal_to, limit_to_first, limit_to_last)
        return {k: render(v) for k, v in kept}

    # -- writes ------------------------------------------------------------------------

    def set(self, path: str, value: JSON) -> None:
        """Replace the value at ``path`` (None deletes)."""
        segs = self._path(path)
        stored = normalise(value, len(segs))
        self._check_body(value)
        self._commit(segs, {(): stored}, patch=False)

    def update(self, path: str, values: Mapping[str, JSON]) -> None:
        """Atomic multi-path update: each key is a path below ``path``; None deletes."""
        segs = self._path(path)
        entries: dict[Segments, Any] = {}
        for key, value in values.items():
            rel = check_path(split_path(key))
            if not rel:
                raise RequestRefused(f"update key {key!r} names no child")
            entries[rel] = normalise(value, len(segs) + len(rel))
        _check_no_overlap(list(entries))
        self._check_body(dict(values))
        if entries:
            self._commit(segs, entries, patch=True)

    def push(self, path: str, value: JSON) -> str:
        """Store ``value`` under a new chronological id below ``path``; return the id."""
        segs = self._path(path)
        key = self.new_id()
        stored = normalise(value, len(segs) + 1)
        self._check_body(value)
        self._commit(segs + (key,), {(): stored}, patch=False)
        return key

    def delete(self, path: str) -> None:
        """Remove the value at ``path``."""
        self.set(path, None)

    def transaction(self, path: str, fn: Callable[[JSON], JSON]) -> JSON:
        """Run ``fn`` on the current value and write its result atomically (None deletes).

        Returns what ``fn`` returned, as FirebaseDatabase does (server values unresolved).
        """
        segs = self._path(path)
        with self._lock:
            new = fn(render(get_in(self._root, segs)))
            stored = normalise(new, len(segs))
            self._check_body(new)
            self._commit(segs, {(): stored}, patch=False)
            return new

    def new_id(self) -> str:
        """A fresh push id (same format and order as the server's)."""
        return self._ids.next(to_ms(self._clock()))

    # -- streams -----------------------------------------------------------------------

    def listen(
        self,
        path: str,
        on_event: EventCallback,
        *,
        on_status: StatusCallback | None = None,
        on_batch: BatchCallback | None = None,
    ) -> MemoryListener:
        """Subscribe to ``path``: an initial put "/" then every change, in commit order."""
        segs = self._path(path, reading=True)
        with self._lock:
            listener = MemoryListener(segs, on_event, on_status, self._forget, on_batch)
            self._listeners.append(listener)
            listener._enqueue(("event", "put", "/", render(get_in(self._root, segs))))
            listener._enqueue(("status", True))
        return listener

    def disconnect(self) -> None:
        """Simulate a network drop: every stream reports on_status(False) and misses events."""
        with self._lock:
            for listener in self._listeners:
                if listener.streaming:
                    listener.streaming = False
                    listener._enqueue(("status", False))

    def reconnect(self) -> None:
        """End a simulated drop: every stream gets a fresh initial put, then on_status(True)."""
        with self._lock:
            for listener in self._listeners:
                if not listener.streaming:
                    listener.streaming = True
                    value = render(get_in(self._root, listener.path))
                    listener._enqueue(("event", "put", "/", value))
                    listener._enqueue(("status", True))

    @contextmanager
    def disconnected(self) -> Iterator[None]:
        """``with db.disconnected():`` streams are down and writes fail inside the block."""
        self.disconnect()
        self.fail_writes = True
        try:
            yield
        finally:
            self.fail_writes = False
            self.reconnect()

    def drain(self, timeout: float = 5.0) -> None:
        """Block until every listener has delivered every event committed so far."""
        with self._lock:
            barriers = []
            for listener in self._listeners:
                done = threading.Event()
                listener._enqueue(("barrier", done))
                barriers.append(done)
        deadline = time.monotonic() + timeout
        for done in barriers:
            if not done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("listeners did not drain in time")

    def close(self) -> None:
        """Close every listener; later calls raise DatabaseError."""
        with self._lock:
            self._closed = True
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()

    # -- internals ---------------------------------------------------------------------

    def _forget(self, listener: MemoryListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _path(self, path: str, *, reading: bool = False) -> Segments:
        if self._closed:
            raise DatabaseError("the database is closed")
        failure = self.fail_reads if reading else self.fail_writes
        if failure:
            if isinstance(failure, BaseException):
                raise failure
            raise DatabaseError("simulated database failure")
        return check_path(split_path(path))

    def _check_body(self, value: Any) -> None:
        try:
            size = len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
        except TypeError:  # an int beyond 64 bits: valid, and never near the limit alone
            return
        if size > self.max_body:
            raise RequestRefused(
                f"Request body exceeds {self.max_body} bytes ({size} bytes)", status=413
            )

    def _commit(self, at: Segments, entries: dict[Segments, Any], *, patch: bool) -> None:
        with self._lock:
            if self.fail_writes:  # re-checked: a test may flip it while a writer waits
                self._path("")
            before = self._root
            now_ms = to_ms(self._clock())  # a database: server values resolve to wire ms
            root = before
            for rel, value in entries.items():
                full = at + rel
                value = resolve_server_values(value, now_ms, get_in(before, full))
                root = set_in(root, full, value)
            self._root = root
            self.writes += 1
            for listener in self._listeners:
                if listener.streaming:
                    for event in events_for(listener.path, at, entries, before, root, patch):
                        listener._enqueue(("event", *event))


def events_for(
    listen: Segments,
    at: Segments,
    entries: Mapping[Segments, Any],
    before: Any,
    after: Any,
    patch: bool,
) -> list[tuple[str, str, Any]]:
    """The stream events a listener at ``listen`` sees for one committed write (pure).

    The same rules as the embedded server: a set at or above the listener is one ``put "/"``,
    below it one ``put``; a PATCH is one event, so a commit is never seen in halves: a
    ``patch`` whose keys are the changed entries' paths relative to the patch location, or a
    ``put "/"`` when an entry covers the whole listened location.
    """
    n, w = len(listen), len(at)
    if w <= n and at != listen[:w]:
        return []
    if w > n and at[:n] != listen:
        return []
    if not patch:
        where = listen if w <= n else at
        return _put_if_changed(where[n:], get_in(before, where), get_in(after, where))
    rel = at[n:]
    changes: dict[str, Any] = {}
    for key in entries:
        full = at + key
        if len(full) <= n:
            if full != listen[: len(full)]:
                continue
            return _put_if_changed((), get_in(before, listen), get_in(after, listen))
        if full[:n] != listen:
            continue
        old, new = get_in(before, full), get_in(after, full)
        if _changed(old, new):
            changes["/".join(full[n + len(rel) :])] = render(new)
    if not changes:
        return []
    return [("patch", join_path(rel), changes)]


def _changed(old: Any, new: Any) -> bool:
    return old is not new and old != new


def _put_if_changed(rel: Segments, old: Any, new: Any) -> list[tuple[str, str, Any]]:
    return [("put", join_path(rel), render(new))] if _changed(old, new) else []


def _check_no_overlap(paths: list[Segments]) -> None:
    pair = overlapping(paths)
    if pair is not None:  # the server answers 400: a refusal, as for a bad key
        short, long = pair
        raise RequestRefused(
            f"update path {join_path(short)} is an ancestor of (or equal to) {join_path(long)}"
        )
