"""The station's cache of ``stats/`` minutes: read by key range, never the whole history.

At start it reads the chart window (the last ``WINDOW`` seconds) in pages ordered by ``$key``; then
every refresh re-reads only the minutes that may still change (from the oldest open minute on).
Minutes that have closed are folded into running per-type totals, so the Prometheus counters
keep counting after the dispatcher deletes old minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from atmosphere.db.base import Database
from atmosphere.paths import Paths
from atmosphere.stats import COUNTERS, minute_key, minute_start

WINDOW = 24 * 3600.0  # seconds, as every time here
PAGE = 500
# Every refresh re-reads at least this much recent history, so a minute written a little late
# (a dispatcher flushing its batch after a restart) still shows. The whole window is read once,
# at start: re-reading 24 h of minutes periodically would cost real Firebase bandwidth.
RECENT = 5 * 60.0
# A minute is closed (no more increments expected) this long after it ends: the dispatcher
# batches its stats writes every few seconds.
CLOSE_AFTER = 30.0

Totals = dict[str, dict[str, float]]


def is_closed(minute: str, now: float) -> bool:
    """True when no more writes are expected for ``minute``."""
    return now >= minute_start(minute) + 60 + CLOSE_AFTER


def add_counters(totals: Totals, per_type: Any) -> None:
    """Add one minute's counters (``{type: record}``) into ``totals`` in place."""
    if not isinstance(per_type, dict):
        return
    for job_type, record in per_type.items():
        if not isinstance(record, dict):
            continue
        sums = totals.setdefault(job_type, dict.fromkeys(COUNTERS, 0.0))
        for counter in COUNTERS:
            value = record.get(counter)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sums[counter] += float(value)


def copy_totals(totals: Totals) -> Totals:
    """A deep copy of per-type totals."""
    return {t: dict(v) for t, v in totals.items()}


class StatsStore:
    """Recent ``stats/`` minutes and running totals, refreshed by ``refresh()``."""

    def __init__(self, database: Database, paths: Paths, clock: Callable[[], float]) -> None:
        self._db = database
        self._paths = paths
        self._clock = clock
        self._lock = threading.Lock()
        self._minutes: dict[str, Any] = {}
        self._closed_totals: Totals = {}
        self._counted: set[str] = set()
        self._loaded = False

    def now(self) -> float:
        """The station's clock in epoch seconds."""
        return self._clock()

    def refresh(self) -> None:
        """Read the minutes that may have changed since the last refresh."""
        now = self.now()
        with self._lock:
            if self._loaded:
                open_minutes = [m for m in self._minutes if m not in self._counted]
                start = min([minute_key(now - RECENT), *open_minutes])
            else:
                start = minute_key(now - WINDOW)
        fresh = self._read_from(start)
        with self._lock:
            self._minutes.update(fresh)
            oldest = minute_key(now - WINDOW)
            for minute in sorted(self._minutes):
                if minute not in self._counted and is_closed(minute, now):
                    add_counters(self._closed_totals, self._minutes[minute])
                    self._counted.add(minute)
                if minute < oldest:
                    del self._minutes[minute]
                    self._counted.discard(minute)
            self._loaded = True

    def _read_from(self, start: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        cursor: str | None = start
        while cursor is not None:
            page = self._db.query(
                self._paths.stats(), order_by="$key", start_at=cursor, limit_to_first=PAGE
            )
            keys = sorted(page)
            out.update(page)
            # start_at is inclusive: the next page starts at the last key (read twice, harmless).
            cursor = keys[-1] if len(keys) == PAGE and keys[-1] != cursor else None
        return out

    @property
    def loaded(self) -> bool:
        """True once the chart window has been read."""
        return self._loaded

    def minutes(self) -> dict[str, Any]:
        """A copy of the cached minutes (``{minute: {type: record}}``)."""
        with self._lock:
            return dict(self._minutes)

    def totals(self) -> Totals:
        """Per-type counter totals: closed minutes folded so far plus the open ones."""
        with self._lock:
            totals = copy_totals(self._closed_totals)
            for minute, per_type in self._minutes.items():
                if minute not in self._counted:
                    add_counters(totals, per_type)
        return totals

    def recent(self, minutes: int) -> Mapping[str, Any]:
        """The cached records of the last ``minutes`` minutes."""
        since = minute_key(self.now() - (minutes - 1) * 60)
        with self._lock:
            return {k: v for k, v in self._minutes.items() if k >= since}
