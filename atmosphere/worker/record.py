"""A cloud's record (``live/clouds/{cloudId}``) and how every write of the cloud carries it.

Every write of the record is the whole record, so a cloud the dispatcher declared dead
re-registers with its next heartbeat. A completion carries it only if it was last written
``record_every`` seconds ago or more (``RECORD_EVERY``). ``_commit`` retries a transport error
with backoff, within a bound; ``_write_once`` is best effort (the heartbeat catches up).

``CloudRecord`` is a part of ``Cloud`` (``cloud.py``), kept in a room of its own.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.presence import CloudInfo
from atmosphere.types import JSON
from atmosphere.worker.execution import transient

if TYPE_CHECKING:
    from atmosphere.app import Atmosphere
    from atmosphere.db.base import Database
    from atmosphere.paths import Paths
    from atmosphere.settings import Settings

log = logging.getLogger(__name__)

# A completion carries the cloud's record only if it was last written this long ago: the
# dispatcher routes by the inbox, the slots and ``lent`` (written when they change), and the
# counters (done, failed, running, load) can wait for the next heartbeat; a record in every
# completion was a change of ``live/clouds`` per job for the server and the dispatcher.
RECORD_EVERY = 0.25


class CloudRecord:
    """The record writing of ``Cloud``, which provides the attributes declared here."""

    app: Atmosphere
    settings: Settings
    database: Database
    paths: Paths
    id: str
    name: str
    slots: int
    prefetch: int
    record_every: float
    _record_key: str
    _record_at: float
    _record_lock: threading.Lock
    _cond: threading.Condition
    _fixed: tuple[int, dict[str, JSON]] | None
    _started: float
    _registered: bool
    _lent: int
    _running: int
    _state: str
    _done: int
    _failed: int
    _halt: threading.Event
    _beat_stop: threading.Event
    _beat_wake: threading.Event

    def record(self) -> dict[str, JSON]:
        """This cloud's whole CloudInfo as written (heartbeat as a server timestamp)."""
        with self._cond:
            lent, running, state = self._lent, self._running, self._state
            done, failed = self._done, self._failed
        return record_json(
            self._fixed_record(),
            lent=lent,
            load=_load(),
            running=running,
            state=state,
            done=done,
            failed=failed,
        )

    def _fixed_record(self) -> dict[str, JSON]:
        """The fields of the record that do not change while the cloud runs, worked out once
        (and again if a task is registered later): every completion carries the record."""
        fixed = self._fixed
        if fixed is None or fixed[0] != len(self.app.tasks):
            info = CloudInfo(
                id=self.id,
                name=self.name,
                types=frozenset(self.app.tasks),
                # Prefetching clouds advertise room for the jobs they queue locally too.
                slots=self.slots + self.prefetch,
                started=self._started,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
            fixed = self._fixed = (len(info.types), info.to_json())
        return fixed[1]

    def _with_record(self, writes: dict[str, JSON], *, if_due: bool = False) -> dict[str, JSON]:
        """``writes`` plus the whole record (``if_due``: only if it was last written
        ``record_every`` seconds ago or more); without it once deregistered (caller holds the
        record lock, under which the deregistration clears ``_registered``)."""
        key = self._record_key
        if not self._registered:
            return {k: v for k, v in writes.items() if k != key}
        if if_due and time.monotonic() - self._record_at < self.record_every:
            return writes
        return {**writes, key: self.record()}

    def _update(self, writes: dict[str, JSON]) -> None:
        """Write ``writes`` in one update, noting when the record went (caller holds the record
        lock)."""
        self.database.update(self.paths.root, writes)
        if self._record_key in writes:
            self._record_at = time.monotonic()

    def _commit(
        self,
        make: Callable[[], dict[str, JSON]],
        *,
        what: str,
        limit: float | None = None,
        with_record: bool = True,
        record_if_due: bool = False,
        cancel: threading.Event | None = None,
    ) -> Exception | None:
        """Write ``make()`` (plus the whole record; ``record_if_due``: only if it is due) in
        one update; None once it is written.

        Only a transport error is retried, with backoff, for up to ``limit`` seconds (None: until
        the cloud halts or ``cancel`` is set); a refusal would only be refused again. Otherwise
        the error it stopped on is returned.
        """
        deadline = None if limit is None else time.monotonic() + limit
        delay = 0.05
        while True:
            with self._record_lock:
                try:
                    writes = make()
                    if with_record:
                        writes = self._with_record(writes, if_due=record_if_due)
                    if writes:
                        self._update(writes)
                    return None
                except Exception as exc:
                    error = exc
            if not transient(error):
                log.error("cloud %s: the database refused the %s: %s", self.name, what, error)
                return error
            if deadline is not None and time.monotonic() + delay > deadline:
                log.error("cloud %s: giving up on the %s: %s", self.name, what, error)
                return error
            log.warning(
                "cloud %s: %s failed (%s); retrying in %.2fs", self.name, what, error, delay
            )
            if self._halt.wait(delay) or (cancel is not None and cancel.is_set()):
                return error
            delay = min(delay * 2, 5.0)

    def _write_once(self, writes: dict[str, JSON]) -> None:
        """Best effort: the next heartbeat carries the record again anyway."""
        with self._record_lock:
            try:
                self._update(self._with_record(writes))
            except Exception as exc:
                log.warning(
                    "cloud %s: write failed (%s); the heartbeat will catch up", self.name, exc
                )

    def _heartbeat(self) -> None:
        while not self._beat_stop.is_set():
            self._beat_wake.wait(self.settings.heartbeat_interval)
            self._beat_wake.clear()
            if self._beat_stop.is_set():
                return
            self._write_once({})


def record_json(
    fixed: dict[str, JSON],
    *,
    lent: int,
    load: float,
    running: int,
    state: str,
    done: int,
    failed: int,
) -> dict[str, JSON]:
    """The whole record, ``CloudInfo.to_json()`` plus a server-timestamp heartbeat, from the
    ``fixed`` fields (``CloudInfo.to_json()`` of the name, types, slots, started, host and pid)
    and the counters of the moment, without building the record field by field (pure)."""
    out = {
        **fixed,
        "load": load,
        "running": running,
        "state": state,
        "done": done,
        "failed": failed,
        "heartbeat": SERVER_TIMESTAMP,
    }
    if lent:  # absent, not 0, as CloudInfo writes it
        out["lent"] = lent
    return out


class LoadAverage:
    """The machine's 1-minute load average, read at most once per ``every`` seconds: every
    completion carries the record, and the kernel recomputes the figure only every 5 s, so a
    read (a syscall, about 4 us) per completion bought nothing."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._value = 0.0
        self._read_at = -math.inf

    def __call__(self) -> float:
        now = self._clock()
        if now - self._read_at >= self._every:
            self._read_at = now
            try:
                self._value = round(os.getloadavg()[0], 2)
            except OSError:
                self._value = 0.0
        return self._value


_load = LoadAverage()
