"""Outbox: writes coalesced into one multi-path PATCH per round trip (a maker's submissions,
a cloud's completions).

``put()`` queues an entry and returns at once; one writer thread sends everything queued as one
update (at most ``max_jobs`` entries and ``max_bytes``), so submissions made while a write is in
flight ride in the next one. No timer delays a write. A lone entry, put when nothing is queued or
in flight and nothing was put for ``gap`` seconds (one-at-a-time RPC), is written by the caller
itself: waking the writer thread costs a scheduler round trip, a millisecond or more on a loaded
machine. Entries are written in the order they were put.

A write that fails reaches every entry it carried through ``fail``; a refused batch (HTTP 4xx)
is retried one entry at a time, so one poison entry fails alone. Nothing is dropped silently.
A write that succeeds reaches its entries through ``done``, if given (a cloud frees a job's
slot only once its completion is committed).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import DatabaseError, PermissionDenied, RequestRefused
from .storable import encoded_size, plan_batches
from .types import JSON

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One queued write: its paths and values, its encoded size (None: worked out by the
    outbox if it queues the entry; a lone entry written at once needs none), and whose it is."""

    writes: Mapping[str, JSON]
    size: int | None
    owner: T


def first_batch(sizes: Sequence[int], max_jobs: int, max_bytes: int) -> int:
    """How many leading entries the next update carries (at least one; pure)."""
    groups, _ = plan_batches(sizes, max_jobs, max_bytes)
    if not groups or groups[0][0] != 0:
        return 1  # the head alone is over max_bytes: send it alone and let the server judge
    return len(groups[0])


def writes_inline(queued: int, sending: bool, since_last_put: float, gap: float) -> bool:
    """Whether the caller writes its entry itself: nothing to coalesce it with, now or soon
    (nothing queued or in flight, and the last put was ``gap`` seconds ago or more; pure)."""
    return queued == 0 and not sending and since_last_put >= gap


def wakes_someone(flushers: int, writer_waits: bool, queued: int, closing: bool) -> bool:
    """Whether a finished write must notify (pure): a flush() waits for it, or the writer
    sleeps while entries wait behind it, or the outbox is closing. Not after a lone write
    with nobody waiting (an RPC's): waking the writer thread for nothing costs a thread
    switch per job."""
    return flushers > 0 or closing or (writer_waits and queued > 0)


def isolates(exc: BaseException) -> bool:
    """Whether a failed batch should be retried entry by entry: the server refused its content
    (one entry may be the cause), as opposed to not answering (every entry would fail alike)."""
    return isinstance(exc, (RequestRefused, PermissionDenied))


class Outbox(Generic[T]):
    """Queues entries and writes them, coalesced, on a thread of its own."""

    def __init__(
        self,
        write: Callable[[list[Entry[T]]], None],
        fail: Callable[[list[T], BaseException], None],
        *,
        done: Callable[[list[T]], None] | None = None,
        max_jobs: int,
        max_bytes: int,
        max_queued: int,
        gap: float = 0.001,
        name: str = "outbox",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write  # one update for the batch: ``merged(batch)``, or built from it
        self._fail = fail
        self._done_with = done
        self._max_jobs = max_jobs
        self._max_bytes = max_bytes
        self._max_queued = max_queued
        self._gap = gap
        self._clock = clock
        self._last_put = clock()
        self._sending = False  # a write is in flight (the writer's or a caller's own)
        self._cond = threading.Condition()
        self._queue: collections.deque[Entry[T]] = collections.deque()
        self._put = 0  # entries ever queued
        self._done = 0  # entries written or failed
        self._closing = False
        self._waiting = False  # the writer sleeps on the condition: put() must wake it
        self._flushers = 0  # callers waiting in flush()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, entry: Entry[T], *, inline: bool = True) -> None:
        """Queue one entry; blocks only while ``max_queued`` entries wait (back-pressure).

        ``inline``: a lone entry may be written by the caller itself (False: the caller has
        other work to do, so the writer thread writes it).

        Raises:
            RuntimeError: the outbox is closed.
        """
        with self._cond:
            while len(self._queue) >= self._max_queued and not self._closing:
                self._cond.wait()
            if self._closing:
                raise RuntimeError("this outbox is closed")
            now = self._clock()
            inline = inline and writes_inline(
                len(self._queue), self._sending, now - self._last_put, self._gap
            )
            self._last_put = now
            self._put += 1
            if not inline:
                self._queue.append(_sized(entry))
                if self._waiting:
                    self._cond.notify_all()
                return
            self._sending = True  # what others put meanwhile waits behind this write
        self._send([entry])
        self._finished(1)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry queued so far is written (or failed); False on timeout."""
        with self._cond:
            target = self._put
            self._flushers += 1
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, then stop the writer; False if it did not finish in time."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while (not self._queue or self._sending) and not self._closing:
                    self._waiting = True
                    self._cond.wait()
                self._waiting = False
                if not self._queue:
                    return
                if self._sending:  # closing while a caller writes: let it finish first
                    self._cond.wait(0.01)
                    continue
                n = first_batch([_size_of(e) for e in self._queue], self._max_jobs, self._max_bytes)
                batch = [self._queue.popleft() for _ in range(n)]
                self._sending = True
                self._cond.notify_all()  # room for putters held back by max_queued
            self._send(batch)
            self._finished(len(batch))

    def _finished(self, n: int) -> None:
        with self._cond:
            self._done += n
            self._sending = False
            if wakes_someone(self._flushers, self._waiting, len(self._queue), self._closing):
                self._cond.notify_all()

    def _send(self, batch: list[Entry[T]]) -> None:
        try:
            self._write(batch)
        except BaseException as exc:  # noqa: BLE001 - every entry must hear of it
            if len(batch) > 1 and isolates(exc):
                log.warning(
                    "a write of %d entries was refused (%s); writing them one by one",
                    len(batch),
                    exc,
                )
                for entry in batch:
                    self._send([entry])
                return
            self._report(batch, exc)
            return
        if self._done_with is not None:
            try:
                self._done_with([e.owner for e in batch])
            except Exception:
                log.exception("reporting a written batch raised")

    def _report(self, batch: list[Entry[T]], exc: BaseException) -> None:
        kind = "refused" if isinstance(exc, DatabaseError) else "failed"
        log.error("a write of %d entries %s: %s", len(batch), kind, exc)
        try:
            self._fail([e.owner for e in batch], exc)
        except Exception:
            log.exception("reporting a failed write raised")


def _sized(entry: Entry[T]) -> Entry[T]:
    """``entry`` with its encoded size, worked out once when it is queued (pure)."""
    if entry.size is not None:
        return entry
    return Entry(entry.writes, _size_of(entry), entry.owner)


def _size_of(entry: Entry[T]) -> int:
    """``entry``'s encoded size (a queued entry's is known already: see ``_sized``)."""
    return entry.size if entry.size is not None else encoded_size(entry.writes)


def merged(batch: Sequence[Entry[T]]) -> dict[str, JSON]:
    """The one update carrying every entry of ``batch`` (a later entry's path wins)."""
    writes: dict[str, JSON] = {}
    for entry in batch:
        writes.update(entry.writes)
    return writes
