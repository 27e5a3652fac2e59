"""Per-minute analytics gathered in memory and written as server-side increments (stats/)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from typing import Any

from atmosphere.db.base import increment
from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.stats import bucket_of, minute_key


class MinuteStats:
    """Counters, latency histograms and peak queue depths not yet written, per (minute, type)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self._peaks: dict[tuple[str, str], int] = {}  # kept for the minute, written when it grows
        self._grown: set[tuple[str, str]] = set()
        self._minute: tuple[float, str] = (float("nan"), "")  # the last (at // 60, its key)

    def _minute_key(self, at: float) -> str:
        """``minute_key(at)``, formatted once per minute: a settled job counts two or three
        figures, and strftime costs about 1.5 us each time."""
        # gmtime floors ``at`` to its second, so its minute is ``at // 60`` (exact for floats).
        minute = at // 60
        if minute != self._minute[0]:
            self._minute = (minute, minute_key(at))
        return self._minute[1]

    def count(self, at: float, job_type: str, counter: str, n: int = 1) -> None:
        """Add ``n`` to ``counter`` ("succeeded", "failed", ...) in the minute containing ``at``."""
        slot = self._counts[(self._minute_key(at), job_type)]
        slot[counter] = slot.get(counter, 0) + n

    def latency(self, at: float, job_type: str, latency: float) -> None:
        """Record one submit-to-finish latency (seconds) in its histogram bucket."""
        self.count(at, job_type, "latency/" + bucket_of(max(0.0, latency)))

    def queue_depth(self, at: float, job_type: str, depth: int) -> None:
        """Remember the deepest queue seen for ``job_type`` in this minute."""
        key = (self._minute_key(at), job_type)
        if depth > self._peaks.get(key, 0):
            self._peaks[key] = depth
            self._grown.add(key)

    def writes(self, paths: Paths) -> dict[str, Any]:
        """The pending figures as update entries, and forget them."""
        out: dict[str, Any] = {}
        for (minute, job_type), counters in self._counts.items():
            base = f"{paths.stats(minute)}/{job_type}"
            for name, n in counters.items():
                out[f"{base}/{name}"] = increment(n)
        for minute, job_type in self._grown:
            # A peak is not additive; the one leader writes its own maximum for the minute.
            out[f"{paths.stats(minute)}/{job_type}/queue"] = self._peaks[(minute, job_type)]
        newest = max((m for m, _ in self._peaks), default="")
        self._peaks = {k: v for k, v in self._peaks.items() if k[0] == newest}
        self._counts.clear()
        self._grown.clear()
        return out


class SubmissionCounter:
    """Counts each job as ``submitted`` once, the first time the dispatcher sees it."""

    MEMORY = 200_000  # job ids remembered

    def __init__(self, stats: MinuteStats, since: float) -> None:
        self._stats = stats
        self._since = since  # older jobs were counted by whoever ran before us
        self._seen: OrderedDict[str, None] = OrderedDict()

    def saw(self, section: str, spec: JobSpec, now: float) -> None:
        """A job appeared in ``section`` ("queue", "delayed" or "inbox") of ``live/``."""
        if spec.id in self._seen:
            return
        self._seen[spec.id] = None
        if len(self._seen) > self.MEMORY:
            self._seen.popitem(last=False)
        at = spec.submitted or now
        if section != "inbox" and spec.attempt == 1 and at >= self._since:
            self._stats.count(at, spec.type, "submitted")
