"""The dispatcher's own timers: what to look at when (a delayed job's eta, the next check for
dead clouds, stats, GC, a resync, the flush of held bookkeeping), earliest first."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator


class Timers:
    """``(when, kind, key)`` entries on the monotonic clock; one kind may repeat."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()  # ties keep the order they were added in

    def add(self, when: float, kind: str, key: str = "") -> None:
        """Look at ``kind`` (for ``key``) at ``when``."""
        heapq.heappush(self._heap, (when, next(self._seq), kind, key))

    def next_due(self) -> float:
        """When the earliest timer is due (inf: none)."""
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> Iterator[tuple[str, str]]:
        """``(kind, key)`` of each timer due at ``now``, removed as it is yielded: one the
        caller adds meanwhile, due by ``now``, comes too."""
        while self._heap and self._heap[0][0] <= now:
            _, _, kind, key = heapq.heappop(self._heap)
            yield kind, key
