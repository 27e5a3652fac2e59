"""Periodic schedules as stored in the database (``live/schedules/{name}``), and the app-side API.

A schedule's *definition* (what to run and when) is written by application code
(``@cloud.periodic`` / ``cloud.schedule``) or the CLI; the dispatcher needs no import of app code.
Operators own ``paused`` and ``run_now``; the leading dispatcher owns ``last`` / ``last_job``.
Re-defining a schedule on every app start therefore keeps its pause state and its history.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .db.base import SERVER_TIMESTAMP, Database
from .errors import InvalidSchedule, NoSuchSchedule
from .jobs import InvalidRecord, check_data, check_key, check_name
from .paths import Paths
from .types import JSON
from .validate import duration_text, retry_count
from .wiretime import parse_ms, render_ms

if TYPE_CHECKING:
    from .triggers import Trigger

_log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
DEFAULT_GRACE = 60.0  # seconds a tick may be late and still count as on time
DEFAULT_CATCH_UP_MAX = 10
# The fields application code owns; the rest (paused, run_now, last, ...) survive a re-define.
DEFINITION_FIELDS = ("job", "cron", "every", "tz", "start", "misfire", "catch_up_max", "grace")


class Misfire(StrEnum):
    """What to do with ticks that were due while no dispatcher could fire them."""

    SKIP = "skip"  # drop ticks later than ``grace``; fire on-time ones
    RUN_ONCE = "run_once"  # however many were missed, fire once (the latest)
    CATCH_UP = "catch_up"  # fire each missed tick, at most ``catch_up_max`` of them


@dataclass(frozen=True)
class ScheduledJob:
    """The job each tick submits."""

    type: str
    name: str | None = None  # default: the schedule's name
    data: JSON = None
    timeout: float | None = None
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        if self.data is not None:
            out["data"] = self.data
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.retries:
            out["retries"] = self.retries
        return out

    @classmethod
    def from_json(cls, raw: Any) -> ScheduledJob:
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise InvalidRecord("schedule.job is not an object with a type")
        name: Any = raw.get("name")
        timeout: Any = raw.get("timeout")
        retries: Any = raw.get("retries")
        return cls(
            type=raw["type"],
            name=name if isinstance(name, str) and name else None,
            data=raw.get("data"),
            timeout=float(timeout) if _is_number(timeout) else None,
            retries=int(retries) if _is_number(retries) and retries > 0 else 0,
        )


@dataclass(frozen=True)
class Schedule:
    """One periodic schedule: its definition, operator flags and firing history."""

    name: str
    job: ScheduledJob
    cron: str | None = None
    every: float | None = None  # seconds
    tz: str = "UTC"
    start: float = 0.0  # seconds; every-schedules fire at start + n * every
    misfire: Misfire = Misfire.SKIP
    catch_up_max: int = DEFAULT_CATCH_UP_MAX
    grace: float = DEFAULT_GRACE
    paused: bool = False
    run_now: float | None = None  # an operator asked for a run at this time
    last: float | None = None  # the fire time of the last tick written
    last_job: str | None = None
    defined: float | None = None  # when the definition last changed
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def trigger(self) -> Trigger:
        """The trigger computing this schedule's fire times."""
        # Imported here: APScheduler costs ~40 ms, and most processes never build a trigger.
        from .triggers import make_trigger

        return make_trigger(cron=self.cron, every=self.every, tz=self.tz, start=self.start)

    @property
    def job_name(self) -> str:
        """The name each tick's job gets."""
        return self.job.name or self.name

    def describe(self) -> str:
        """A short human description of when it fires ("cron 0 3 * * * Europe/Berlin")."""
        if self.cron is not None:
            return f"cron {self.cron}" + ("" if self.tz == "UTC" else f" {self.tz}")
        return f"every {duration_text(self.every or 0)}"

    def definition_json(self) -> dict[str, Any]:
        """The fields application code owns (None: absent)."""
        return {
            "job": self.job.to_json(),
            "cron": self.cron,
            "every": self.every,
            "tz": self.tz if self.cron is not None else None,
            "start": render_ms(self.start or None),
            "misfire": self.misfire.value,
            "catch_up_max": self.catch_up_max if self.misfire is Misfire.CATCH_UP else None,
            "grace": self.grace if self.grace != DEFAULT_GRACE else None,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole record as stored."""
        out = {k: v for k, v in self.definition_json().items() if v is not None}
        out.update(
            {
                k: v
                for k, v in {
                    "paused": self.paused or None,
                    "run_now": render_ms(self.run_now),
                    "last": render_ms(self.last),
                    "last_job": self.last_job,
                    "defined": render_ms(self.defined),
                }.items()
                if v is not None
            }
        )
        return out

    @classmethod
    def from_json(cls, raw: Any, name: str) -> Schedule:
        """Parse a stored record; InvalidRecord if it cannot be a schedule."""
        if not isinstance(raw, dict):
            raise InvalidRecord(f"schedule {name!r} is not an object")
        tz: Any = raw.get("tz")
        try:
            schedule = cls(
                name=name,
                job=ScheduledJob.from_json(raw.get("job")),
                cron=raw.get("cron") if isinstance(raw.get("cron"), str) else None,
                every=float(raw["every"]) if _is_number(raw.get("every")) else None,
                tz=tz if isinstance(tz, str) else "UTC",
                start=parse_ms(raw.get("start")) or 0.0,
                misfire=Misfire(raw.get("misfire", Misfire.SKIP.value)),
                catch_up_max=max(1, int(raw.get("catch_up_max", DEFAULT_CATCH_UP_MAX))),
                grace=max(0.0, float(raw.get("grace", DEFAULT_GRACE))),
                paused=raw.get("paused") is True,
                run_now=parse_ms(raw.get("run_now")),
                last=parse_ms(raw.get("last")),
                last_job=raw.get("last_job") if isinstance(raw.get("last_job"), str) else None,
                defined=parse_ms(raw.get("defined")),
            )
            validate(schedule)
        except (ValueError, TypeError) as exc:
            raise InvalidRecord(f"schedule {name!r}: {exc}") from None
        return schedule

    def evolve(self, **changes: Any) -> Schedule:
        """A copy with some fields changed."""
        return replace(self, **changes)


def make_schedule(
    name: str,
    job: ScheduledJob | dict[str, Any] | str,
    *,
    cron: str | None = None,
    every: timedelta | float | None = None,
    tz: str = "UTC",
    start: float = 0.0,
    misfire: Misfire | str = Misfire.SKIP,
    catch_up_max: int = DEFAULT_CATCH_UP_MAX,
    grace: timedelta | float = DEFAULT_GRACE,
) -> Schedule:
    """Build and validate a schedule definition.

    Args:
        name: the schedule's key (letters, digits, ``_`` and ``-``).
        job: what each tick submits: a ScheduledJob, a ``{type, name, data, timeout}`` dict,
            or just a job type.
        cron: a 5-field crontab expression, matched in ``tz``.
        every: an interval (seconds or a timedelta); give exactly one of cron and every.
        tz: an IANA time zone for ``cron``.
        start: seconds anchoring ``every`` (ticks at start + n * every; default the Unix
            epoch).
        misfire: skip, run_once or catch_up.
        catch_up_max: the most missed ticks ``catch_up`` fires.
        grace: seconds a tick may be late and still be on time.

    Raises:
        InvalidSchedule: anything malformed, with the reason.
    """
    try:
        if isinstance(job, str):
            job = ScheduledJob(type=job)
        elif isinstance(job, dict):
            job = _job_from_dict(job)
        schedule = Schedule(
            name=name,
            job=job,
            cron=cron,
            every=every.total_seconds() if isinstance(every, timedelta) else every,
            tz=tz,
            start=start,
            misfire=Misfire(misfire),
            catch_up_max=catch_up_max,
            grace=grace.total_seconds() if isinstance(grace, timedelta) else float(grace),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule(f"schedule {name!r}: {exc}") from None
    validate(schedule)
    return schedule


def validate(schedule: Schedule) -> None:
    """Raise InvalidSchedule when ``schedule`` could not be fired."""
    where = f"schedule {schedule.name!r}"
    if not isinstance(schedule.name, str) or not _NAME.match(schedule.name):
        raise InvalidSchedule(
            f"{where}: a name is 1-200 letters, digits, '_' or '-', starting with a letter or digit"
        )
    try:
        check_key(schedule.job.type, "job type")
        if schedule.job.name is not None:
            check_name(schedule.job.name, "job name")
        check_data(schedule.job.data, 1_000_000, keys=True)  # stored as a tree
        if schedule.job.timeout is not None and schedule.job.timeout <= 0:
            raise ValueError("job timeout must be positive")
        retry_count(schedule.job.retries, "job retries")
        if schedule.catch_up_max < 1:
            raise ValueError("catch_up_max must be at least 1")
        if schedule.grace < 0:
            raise ValueError("grace must not be negative")
        from .triggers import time_zone

        time_zone(schedule.tz)
        if schedule.trigger().next_after(datetime.now(UTC)) is None:
            raise ValueError("it never fires")
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule(f"{where}: {exc}") from None


def anchor(schedule: Schedule) -> float | None:
    """Ticks strictly after this time may be due: the later of the last tick and the last
    change of the definition (so a changed schedule does not catch up on its old self)."""
    known = [t for t in (schedule.last, schedule.defined) if t is not None]
    return max(known) if known else None


def next_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """When this schedule next fires after ``now`` (None: paused, never stored, or never)."""
    from .triggers import utc

    after = anchor(schedule)
    if schedule.paused or after is None:
        return None
    return schedule.trigger().next_after(max(now, utc(after)))


# -- database I/O -------------------------------------------------------------------------


def store_schedule(db: Database, paths: Paths, schedule: Schedule) -> bool:
    """Write ``schedule``'s definition, keeping its pause state and history; True if it changed.

    ``defined`` (the anchor for the first tick) moves only when the definition really changes,
    so an app that re-defines its schedules on every start neither skips nor repeats ticks.
    """
    validate(schedule)
    current = db.get(paths.schedules(schedule.name))
    current = current if isinstance(current, dict) else {}
    wanted = schedule.definition_json()
    stored = {k: current.get(k) for k in DEFINITION_FIELDS}
    if stored == wanted and current.get("defined") is not None:
        return False
    changes: dict[str, Any] = {k: v for k, v in wanted.items()}
    changes["defined"] = SERVER_TIMESTAMP
    db.update(paths.schedules(schedule.name), changes)
    return True


def load_schedules(db: Database, paths: Paths) -> dict[str, Schedule]:
    """Every valid stored schedule by name; malformed records are logged and skipped."""
    raw = db.get(paths.schedules())
    return parse_schedules(raw)


def parse_schedules(raw: Any) -> dict[str, Schedule]:
    """Parse the value of ``live/schedules``; malformed records are logged and skipped."""
    out: dict[str, Schedule] = {}
    if not isinstance(raw, dict):
        return out
    for name, record in raw.items():
        try:
            out[name] = Schedule.from_json(record, name)
        except InvalidRecord as exc:
            _log.warning("ignoring %s", exc)
    return out


def load_schedule(db: Database, paths: Paths, name: str) -> Schedule:
    """One stored schedule; NoSuchSchedule if absent, InvalidRecord if malformed."""
    raw = db.get(paths.schedules(name)) if _NAME.match(name) else None
    if raw is None:
        raise NoSuchSchedule(f"no schedule named {name!r}")
    return Schedule.from_json(raw, name)


def set_paused(db: Database, paths: Paths, name: str, paused: bool) -> None:
    """Pause (no ticks fire; missed ones count as misfires on resume) or resume a schedule."""
    load_schedule(db, paths, name)
    db.update(paths.schedules(name), {"paused": paused})


def request_run(db: Database, paths: Paths, name: str) -> None:
    """Ask the leading dispatcher to run the schedule's job once, now (paused or not)."""
    load_schedule(db, paths, name)
    db.update(paths.schedules(name), {"run_now": SERVER_TIMESTAMP})


def remove_schedule(db: Database, paths: Paths, name: str) -> None:
    """Delete a schedule; jobs it already fired are unaffected."""
    if not _NAME.match(name) or db.get(paths.schedules(name), shallow=True) is None:
        raise NoSuchSchedule(f"no schedule named {name!r}")
    db.delete(paths.schedules(name))


class ScheduleBook:
    """The schedules an app defines with ``@app.periodic``, until they are stored.

    Decorators run at import time, before the app knows its database; ``store_all`` writes them
    once it does (when the app's cloud starts), and again harmlessly on every later start.
    """

    def __init__(self) -> None:
        self.schedules: dict[str, Schedule] = {}

    def add(self, schedule: Schedule) -> None:
        """Remember ``schedule``; a second definition under the same name is an error."""
        known = self.schedules.get(schedule.name)
        if known is not None and known != schedule:
            raise InvalidSchedule(f"schedule {schedule.name!r} is defined twice, differently")
        self.schedules[schedule.name] = schedule

    def store_all(self, db: Database, paths: Paths) -> list[str]:
        """Write every definition; return the names whose stored definition changed."""
        return [s.name for s in self.schedules.values() if store_schedule(db, paths, s)]


def task_job(task: Any, data: JSON = None, timeout: float | None = None) -> ScheduledJob:
    """The job a ``@periodic`` schedule submits for ``task`` (anything with a ``type``)."""
    job_type = getattr(task, "type", None)
    if not isinstance(job_type, str):
        raise InvalidSchedule(
            "@periodic goes above @task: put @app.periodic(...) over @app.task(...)"
        )
    if timeout is None:
        task_timeout: Any = getattr(task, "timeout", None)
        timeout = float(task_timeout) if _is_number(task_timeout) else None
    return ScheduledJob(type=job_type, data=data, timeout=timeout)


# -- helpers ------------------------------------------------------------------------------


def _job_from_dict(raw: dict[str, Any]) -> ScheduledJob:
    unknown = set(raw) - {"type", "name", "data", "timeout", "retries"}
    if unknown:
        raise ValueError(f"unknown job option(s) {sorted(unknown)}")
    if not isinstance(raw.get("type"), str):
        raise ValueError("job needs a type")
    timeout = raw.get("timeout")
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    return ScheduledJob(
        type=raw["type"],
        name=raw.get("name"),
        data=raw.get("data"),
        timeout=float(timeout) if timeout is not None else None,
        retries=int(raw.get("retries", 0)),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
