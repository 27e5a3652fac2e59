"""Per-minute analytics records: written by the dispatcher, read by the Weather Station.

``stats/{minute}/{type}`` holds counters and a latency histogram. Counters are written with
server-side increments, so several writers (or a restarted dispatcher) add up correctly.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from typing import Any

from .wiretime import to_ms

# Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    30_000,
    60_000,
)
COUNTERS = ("submitted", "succeeded", "failed", "retried", "timed_out", "requeued")


def minute_key(at: float) -> str:
    """The stats key of the UTC minute containing ``at`` (epoch seconds): YYYYMMDDHHMM."""
    return time.strftime("%Y%m%d%H%M", time.gmtime(at))


def minute_start(key: str) -> int:
    """Epoch seconds at the start of the minute named by ``key``."""
    return calendar.timegm(time.strptime(key, "%Y%m%d%H%M"))


def bucket_of(latency: float) -> str:
    """The histogram bucket key ("b0".."b15") a latency (seconds) falls in."""
    # Whole ms, as the wire times it was measured from: a latency on a bound stays in it.
    latency_ms = to_ms(latency)
    for index, bound in enumerate(LATENCY_BUCKETS_MS):
        if latency_ms <= bound:
            return f"b{index}"
    return f"b{len(LATENCY_BUCKETS_MS)}"


def percentile(buckets: Mapping[str, Any], q: float) -> float | None:
    """Approximate the q-quantile (0..1) from a histogram: the upper bound of its bucket, in ms
    (the histogram's own unit, and what the station's charts show)."""
    counts = []
    for index in range(len(LATENCY_BUCKETS_MS) + 1):
        value = buckets.get(f"b{index}", 0)
        counts.append(int(value) if isinstance(value, (int, float)) else 0)
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= rank and count:
            if index < len(LATENCY_BUCKETS_MS):
                return float(LATENCY_BUCKETS_MS[index])
            return float(LATENCY_BUCKETS_MS[-1]) * 2
    return float(LATENCY_BUCKETS_MS[-1]) * 2
