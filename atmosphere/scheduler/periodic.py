"""The Periodic component: fires due schedule ticks from the leading dispatcher.

``Periodic`` decides and builds the writes (given the schedules, the time and a writer);
``PeriodicComponent`` plugs it into the dispatcher's loop (``Component`` protocol): it reads the
schedules from the dispatcher's mirror of ``live/``, writes through the dispatcher's batch, and
acts only while the dispatcher leads. Timers are computed from the pure next-fire function.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atmosphere.jobs import InvalidRecord
from atmosphere.paths import Paths
from atmosphere.scheduler.ticks import (
    due_ticks,
    fire_time,
    tick_update,
    wants_manual_run,
)
from atmosphere.schedules import Schedule, next_fire

if TYPE_CHECKING:
    from atmosphere.scheduler.desk import Desk
    from atmosphere.scheduler.state import Change

_log = logging.getLogger(__name__)

Writer = Callable[[dict[str, Any]], None]
# Look again at least this often, so a changed clock or a missed change costs little.
MAX_SLEEP = 30.0


class Periodic:
    """Fires each schedule's due ticks exactly once (the caller makes sure it leads)."""

    def __init__(self, paths: Paths, *, default_timeout: float = 60.0) -> None:
        self.paths = paths
        self.default_timeout = default_timeout
        self._parsed: dict[str, tuple[Any, Schedule | None]] = {}
        # What we wrote and have not necessarily seen back yet, so we never fire twice.
        self._fired_last: dict[str, float] = {}
        self._fired_manual: dict[str, float] = {}
        self.fired: deque[str] = deque(maxlen=1000)  # the latest job ids fired here (tests, logs)

    def run(self, raw: Mapping[str, Any], now: datetime, write: Writer) -> datetime | None:
        """Fire what is due at ``now`` among the raw schedule records; return the next wake."""
        schedules = self.schedules(raw)
        for schedule in schedules.values():
            if wants_manual_run(schedule):
                assert schedule.run_now is not None
                self._fire(schedule, schedule.run_now, write, manual=True)
            for when in due_ticks(schedule, now):
                self._fire(schedule, fire_time(when), write, manual=False)
        wakes = [t for s in self.schedules(raw).values() if (t := next_fire(s, now)) is not None]
        return min(wakes) if wakes else None

    def differs(self, raw: Mapping[str, Any]) -> bool:
        """True when ``raw`` is not what we last parsed (a schedule added, changed, removed)."""
        if raw.keys() != self._parsed.keys():
            return True
        return any(self._parsed[name][0] != record for name, record in raw.items())

    def schedules(self, raw: Mapping[str, Any]) -> dict[str, Schedule]:
        """Parse records (once per change; garbage is logged once), with our own writes applied."""
        out: dict[str, Schedule] = {}
        for name in set(self._parsed) - set(raw):
            del self._parsed[name]
        for name, record in raw.items():
            cached = self._parsed.get(name)
            if cached is None or cached[0] != record:
                cached = (_copy(record), self._parse(name, record))
                self._parsed[name] = cached
            if cached[1] is not None:
                out[name] = self._with_own_writes(cached[1])
        return out

    def _parse(self, name: str, record: Any) -> Schedule | None:
        try:
            return Schedule.from_json(record, name)
        except InvalidRecord as exc:
            _log.warning("ignoring %s", exc)
            return None

    def _fire(self, schedule: Schedule, fire: float, write: Writer, *, manual: bool) -> None:
        job_id, update = tick_update(
            self.paths, schedule, fire, default_timeout=self.default_timeout, manual=manual
        )
        write(update)
        if manual:
            self._fired_manual[schedule.name] = fire
        else:
            self._fired_last[schedule.name] = fire
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


class PeriodicComponent:
    """Runs ``Periodic`` inside the dispatcher loop, on the leader only."""

    def __init__(self, paths: Paths, *, default_timeout: float = 60.0) -> None:
        self.periodic = Periodic(paths, default_timeout=default_timeout)
        self._dirty = True
        self._next_wall: float | None = None  # wall seconds of the next fire
        self._leading = False

    def changed(self, changes: Sequence[Change]) -> None:
        """A schedule changed (defined, paused, run-now, fired): look again."""
        if any(change.section == "schedules" for change in changes):
            self._dirty = True

    def tick(self, desk: Desk, now: float) -> float | None:
        """Fire due ticks when leading; return the monotonic time of the next fire."""
        leading = desk.is_leader()
        if leading and not self._leading:
            self._dirty = True  # just elected: catch up from the schedules' `last`
        self._leading = leading
        if not leading:
            return None
        wall = desk.now()
        raw = {key[0]: value for key, value in desk.state.records["schedules"].items()}
        # The mirror updates records in place, so a change may arrive without a Change: compare.
        self._dirty = self._dirty or self.periodic.differs(raw)
        if not self._dirty and self._next_wall is not None and wall < self._next_wall:
            return now + min(MAX_SLEEP, self._next_wall - wall)
        self._dirty = False
        nxt = self.periodic.run(raw, datetime.fromtimestamp(wall, tz=UTC), desk.write)
        self._next_wall = nxt.timestamp() if nxt is not None else wall + MAX_SLEEP
        return now + min(MAX_SLEEP, max(0.0, self._next_wall - wall))


def _copy(record: Any) -> Any:
    # The dispatcher's mirror mutates its tree in place; keep our own copy to compare against.
    if isinstance(record, dict):
        return {k: _copy(v) for k, v in record.items()}
    if isinstance(record, list):
        return [_copy(v) for v in record]
    return record
