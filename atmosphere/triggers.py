"""Fire-time arithmetic for periodic schedules: the only module that imports APScheduler.

Shared by the app side (checking a definition, showing its next tick) and the dispatcher (which
ticks are due), so it sits outside both: a cloud never imports the dispatcher package.

APScheduler 3.x triggers match the cron fields; time zones and DST are handled here, on top of
them, because APScheduler 3.x can loop or step backwards across a DST fall-back. Rules:

- a cron expression matches *wall-clock* times in its time zone;
- a wall-clock time skipped by a spring-forward gap fires at the same offset after the jump
  (02:30 on a day that jumps from 02:00 to 03:00 fires at 03:30);
- a wall-clock time repeated by a fall-back fires once, at its first occurrence;
- ``every`` schedules fire at ``start + n * every`` in absolute time (no time zone involved).

Everything here is pure: real times are aware UTC datetimes, nothing reads the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .wiretime import from_ms, to_ms

ONE_MS = timedelta(milliseconds=1)
# A cron expression that matches nothing (e.g. "0 0 30 2 *") must not search forever.
_MAX_CANDIDATES = 10_000
_MAX_WINDOW = timedelta(days=366 * 5)

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_TERM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


class Trigger(Protocol):
    """Something that knows when a schedule fires next."""

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware UTC), or None if there is none."""
        ...


def time_zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; ValueError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def utc(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def whole_ms(when: datetime) -> datetime:
    """``when`` rounded to the whole millisecond the wire can hold."""
    return utc(from_ms(to_ms(when.timestamp())))


class CronSchedule:
    """A standard 5-field crontab expression in an IANA time zone."""

    def __init__(self, expr: str, tz: str = "UTC") -> None:
        self.expr = expr
        self.tz = time_zone(tz)
        fields = expr.split()
        if len(fields) != 5:
            raise ValueError(f"cron {expr!r} needs 5 fields (minute hour day month weekday)")
        minute, hour, day, month, dow = fields
        try:
            # Matching runs on naive wall-clock time dressed as UTC, so APScheduler never sees
            # a DST transition; _to_real() maps wall-clock back to real time.
            self._trigger = CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=crontab_weekdays(dow),
                timezone=UTC,
            )
        except ValueError as exc:
            raise ValueError(f"cron {expr!r}: {exc}") from None

    def next_after(self, after: datetime) -> datetime | None:
        """The first real time after ``after`` whose wall-clock time matches the expression."""
        wall = after.astimezone(self.tz).replace(tzinfo=UTC)
        for _ in range(_MAX_CANDIDATES):
            candidate = self._trigger.get_next_fire_time(None, wall + ONE_MS)
            if candidate is None or candidate - wall > _MAX_WINDOW:
                return None
            real = self._to_real(candidate)
            if real > after:
                return real
            wall = candidate  # inside a repeated hour, or a gap mapped onto a later match
        return None

    def _to_real(self, wall: datetime) -> datetime:
        # fold=0: a repeated time means its first occurrence; a skipped time is read with the
        # offset before the jump, which lands the same distance after it.
        local = wall.replace(tzinfo=self.tz, fold=0)
        return local.astimezone(UTC)


class EverySchedule:
    """Fixed intervals of ``every`` seconds on the grid ``start + n * every`` (absolute time)."""

    def __init__(self, every: float, start: float = 0.0) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 second, got {every}")
        self.every = every
        self._trigger = IntervalTrigger(seconds=every, start_date=utc(start), timezone=UTC)

    def next_after(self, after: datetime) -> datetime | None:
        """The first grid point strictly after ``after``."""
        nxt: datetime | None = self._trigger.get_next_fire_time(None, after + ONE_MS)
        if nxt is None:
            return None
        # Whole milliseconds: fire times become job ids and must round-trip exactly.
        return whole_ms(nxt)


def make_trigger(
    *, cron: str | None = None, every: float | None = None, tz: str = "UTC", start: float = 0.0
) -> Trigger:
    """The trigger for a schedule definition: exactly one of ``cron`` and ``every``."""
    if (cron is None) == (every is None):
        raise ValueError("give exactly one of cron= and every=")
    if cron is not None:
        return CronSchedule(cron, tz)
    assert every is not None
    return EverySchedule(every, start)


def fire_times_between(
    trigger: Trigger, after: datetime, until: datetime, *, last: int
) -> list[datetime]:
    """The last ``last`` fire times in (after, until], oldest first.

    Searches backwards from ``until`` in doubling windows, so a schedule that was down for a
    year costs about as much as one that was down for a minute.
    """
    if until <= after or last <= 0:
        return []
    first = trigger.next_after(after)
    if first is None or first > until:
        return []  # the common case on every timer wake-up: nothing due yet
    window = timedelta(seconds=1)
    while True:
        start = max(after, until - window)
        times = _fire_times_in(trigger, start, until)
        if len(times) >= last or start == after:
            return times[-last:]
        window *= 2


def _fire_times_in(trigger: Trigger, after: datetime, until: datetime) -> list[datetime]:
    times: list[datetime] = []
    cursor = after
    while len(times) < _MAX_CANDIDATES:
        nxt = trigger.next_after(cursor)
        if nxt is None or nxt > until:
            break
        times.append(nxt)
        cursor = nxt
    return times


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as APScheduler 3.x names (0 = Monday there)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for term in field.lower().split(","):
        days |= _weekday_term(term, field)
    return ",".join(_DOW_NAMES[d] for d in sorted(days))


def _weekday_term(term: str, field: str) -> set[int]:
    match = _DOW_TERM.match(term)
    if not match:
        raise ValueError(f"bad weekday field {field!r}")
    span, step_text = match.groups()
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"bad step in weekday field {field!r}")
    if span == "*":
        low, high = 0, 6
    elif "-" in span:
        first, second = span.split("-")
        low, high = _weekday(first, field), _weekday(second, field)
        if high == 0 and low > 0:  # "5-0" / "fri-sun" style wrap to Sunday
            high = 7
    else:
        low = high = _weekday(span, field)
        if step_text:  # "1/2" means 1-6/2, as in Vixie cron
            high = 6
    if low > high:
        raise ValueError(f"weekday range {span!r} runs backwards in {field!r}")
    return {d % 7 for d in range(low, high + 1, step)}


def _weekday(text: str, field: str) -> int:
    if text.isdigit():
        value = int(text)
        if value > 7:
            raise ValueError(f"weekday {value} out of range 0-7 in {field!r}")
        return value
    if text[:3] in _DOW_NAMES and len(text) == 3:
        return _DOW_NAMES.index(text)
    raise ValueError(f"bad weekday {text!r} in {field!r}")
