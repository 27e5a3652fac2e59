"""Per-minute analytics gathered in memory and written as server-side increments (stats/)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from atmosphere.db.base import increment
from atmosphere.paths import Paths
from atmosphere.stats import bucket_of, minute_key


class MinuteStats:
    """Counters, latency histograms and peak queue depths not yet written, per (minute, type)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self._peaks: dict[tuple[str, str], int] = {}  # kept for the minute, written when it grows
        self._grown: set[tuple[str, str]] = set()

    def count(self, ms: float, job_type: str, counter: str, n: int = 1) -> None:
        """Add ``n`` to ``counter`` ("succeeded", "failed", ...) in the minute containing ``ms``."""
        slot = self._counts[(minute_key(ms), job_type)]
        slot[counter] = slot.get(counter, 0) + n

    def latency(self, ms: float, job_type: str, latency_ms: float) -> None:
        """Record one submit-to-finish latency in its histogram bucket."""
        self.count(ms, job_type, "latency/" + bucket_of(max(0.0, latency_ms)))

    def queue_depth(self, ms: float, job_type: str, depth: int) -> None:
        """Remember the deepest queue seen for ``job_type`` in this minute."""
        key = (minute_key(ms), job_type)
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
