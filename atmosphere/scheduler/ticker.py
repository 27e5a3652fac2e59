"""The Periodic component: fires due schedule ticks while this dispatcher leads.

It mirrors ``live/schedules`` on every dispatcher (so a new leader starts from fresh ``last``
values) but writes only while ``fence()`` gives an epoch. Timers are computed from the pure
next-fire function; a stream change (a new schedule, pause, run-now) wakes it at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from atmosphere.db._tree import render
from atmosphere.db.base import Database
from atmosphere.db.mirror import Mirror
from atmosphere.errors import DatabaseError
from atmosphere.paths import Paths
from atmosphere.scheduler.ticks import (
    due_ticks,
    fire_ms_of,
    next_fire,
    tick_update,
    wants_manual_run,
)
from atmosphere.schedules import Schedule, parse_schedules

_log = logging.getLogger(__name__)

# Sleep at most this long, so a changed clock or a missed wake-up costs little.
MAX_SLEEP = 30.0
RETRY_AFTER_ERROR = 1.0


class Ticker:
    """Fires each schedule's due ticks exactly once, from the leader only."""

    def __init__(
        self,
        db: Database,
        paths: Paths,
        *,
        fence: Callable[[], int | None],
        default_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        write: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.db = db
        self.paths = paths
        self._fence = fence
        self._default_timeout = default_timeout
        self._clock = clock
        self._write = write or (lambda values: db.update("", values))
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._mirror: Mirror | None = None
        self._thread: threading.Thread | None = None
        # What we wrote and have not yet seen echoed by the stream, so we never fire twice.
        self._fired_last: dict[str, int] = {}
        self._fired_manual: dict[str, int] = {}
        self._parsed: dict[str, Schedule] = {}
        self._parsed_from: Any = None
        self.fired: list[str] = []  # job ids this process fired (for tests and stats)

    def start(self) -> None:
        """Start mirroring schedules and the timer thread."""
        self._mirror = Mirror(self.db, self.paths.schedules(), lambda *_: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread and the stream."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._mirror is not None:
            self._mirror.close()

    def wake(self) -> None:
        """Re-check now (call when this dispatcher becomes leader)."""
        self._wake.set()

    def schedules(self) -> dict[str, Schedule]:
        """The mirrored schedules, with our own not-yet-echoed writes applied."""
        snapshot = self._mirror.snapshot() if self._mirror is not None else None
        if snapshot is not self._parsed_from:  # parse (and log garbage) once per change
            self._parsed = parse_schedules(render(snapshot))
            self._parsed_from = snapshot
        return {name: self._with_own_writes(s) for name, s in self._parsed.items()}

    def step(self, now: datetime | None = None) -> float:
        """Fire whatever is due at ``now``; return seconds until the next check."""
        now = now or datetime.fromtimestamp(self._clock(), tz=UTC)
        if self._mirror is not None and not self._mirror.synced:
            return RETRY_AFTER_ERROR
        if self._fence() is None:
            return MAX_SLEEP  # the election wakes us when we lead
        schedules = self.schedules()
        try:
            for schedule in schedules.values():
                self._fire_due(schedule, now)
        except DatabaseError as exc:
            _log.warning("could not fire a schedule tick (retrying): %s", exc)
            return RETRY_AFTER_ERROR
        return self._sleep_until_next(self.schedules(), now)

    # -- internals ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self.step()
            except Exception:  # never let one bad schedule stop the others for good
                _log.exception("ticker step failed")
                wait = RETRY_AFTER_ERROR
            self._wake.wait(max(0.0, min(wait, MAX_SLEEP)))
            self._wake.clear()

    def _fire_due(self, schedule: Schedule, now: datetime) -> None:
        if wants_manual_run(schedule):
            assert schedule.run_now is not None
            self._fire(schedule, schedule.run_now, manual=True)
        for when in due_ticks(schedule, now):
            self._fire(schedule, fire_ms_of(when), manual=False)

    def _fire(self, schedule: Schedule, fire_ms: int, *, manual: bool) -> None:
        if self._fence() is None:
            return  # deposed while firing: the new leader takes it from our last write
        job_id, update = tick_update(
            self.paths, schedule, fire_ms, default_timeout=self._default_timeout, manual=manual
        )
        self._write(update)
        if manual:
            self._fired_manual[schedule.name] = fire_ms
        else:
            self._fired_last[schedule.name] = fire_ms
        self.fired.append(job_id)
        _log.info("schedule %s fired %s", schedule.name, job_id)

    def _with_own_writes(self, schedule: Schedule) -> Schedule:
        fired = self._fired_last.get(schedule.name)
        if fired is not None and (schedule.last is None or schedule.last < fired):
            schedule = schedule.evolve(last=fired)
        manual = self._fired_manual.get(schedule.name)
        if manual is not None and schedule.run_now is not None and schedule.run_now <= manual:
            schedule = schedule.evolve(run_now=None)
        return schedule

    def _sleep_until_next(self, schedules: dict[str, Schedule], now: datetime) -> float:
        times = [t for s in schedules.values() if (t := next_fire(s, now)) is not None]
        if not times:
            return MAX_SLEEP
        return max(0.0, (min(times) - now).total_seconds())
