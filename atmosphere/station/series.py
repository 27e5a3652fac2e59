"""Pure functions turning per-minute ``stats/`` records into chart series and summary figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmosphere.stats import COUNTERS, LATENCY_BUCKETS_MS, minute_key, minute_start, percentile
from atmosphere.wiretime import to_ms

MINUTE = 60  # seconds
# The latency/throughput tiles summarise this many recent minutes.
SUMMARY_MINUTES = 5


def minute_range(start: float, end: float) -> list[str]:
    """Every minute key from the one containing ``start`` to the one containing ``end``."""
    first = minute_start(minute_key(start))
    return [minute_key(t) for t in range(first, int(end) + 1, MINUTE)]


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def merge_histograms(histograms: list[Mapping[str, Any]]) -> dict[str, float]:
    """Sum latency histograms bucket by bucket."""
    total: dict[str, float] = {}
    for hist in histograms:
        for index in range(len(LATENCY_BUCKETS_MS) + 1):
            key = f"b{index}"
            total[key] = total.get(key, 0.0) + _num(hist.get(key))
    return total


def _types_of(minutes: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    for record in minutes.values():
        if isinstance(record, dict):
            found.update(record)
    return sorted(found)


def _record(minutes: Mapping[str, Any], minute: str, job_type: str) -> dict[str, Any]:
    per_type = minutes.get(minute)
    record = per_type.get(job_type) if isinstance(per_type, dict) else None
    return record if isinstance(record, dict) else {}


def _elapsed_seconds(minute: str, now: float) -> float:
    """Seconds of ``minute`` that have passed (60 for past minutes; at least 1)."""
    return max(1.0, min(60.0, now - minute_start(minute)))


def build_series(minutes: Mapping[str, Any], start: float, now: float) -> dict[str, Any]:
    """Chart series over [start, now] (seconds): jobs/s, failures, queue depth per type;
    p50/p95 overall. Times and latencies go to the page in ms."""
    keys = minute_range(start, now)
    types = _types_of({k: minutes.get(k) for k in keys})
    throughput: dict[str, list[float]] = {t: [] for t in types}
    failures: dict[str, list[float]] = {t: [] for t in types}
    queue: dict[str, list[float | None]] = {t: [] for t in types}
    p50: list[float | None] = []
    p95: list[float | None] = []
    for minute in keys:
        seconds = _elapsed_seconds(minute, now)
        histograms = []
        for t in types:
            rec = _record(minutes, minute, t)
            finished = _num(rec.get("succeeded")) + _num(rec.get("failed"))
            throughput[t].append(round(finished / seconds, 3))
            failures[t].append(_num(rec.get("failed")))
            queue[t].append(_num(rec["queue"]) if "queue" in rec else None)
            if isinstance(rec.get("latency"), dict):
                histograms.append(rec["latency"])
        merged = merge_histograms(histograms)
        p50.append(percentile(merged, 0.5))
        p95.append(percentile(merged, 0.95))
    return {
        "minutes": [to_ms(minute_start(k)) for k in keys],
        "types": types,
        "throughput": throughput,
        "failures": failures,
        "queue": queue,
        "p50": p50,
        "p95": p95,
        "totals": window_totals(minutes, keys, types),
        "summary": summary(minutes, keys, types, now),
    }


def window_totals(
    minutes: Mapping[str, Any], keys: list[str], types: list[str]
) -> dict[str, dict[str, float]]:
    """Counter sums per type over the given minutes."""
    out: dict[str, dict[str, float]] = {}
    for t in types:
        sums = dict.fromkeys(COUNTERS, 0.0)
        for minute in keys:
            rec = _record(minutes, minute, t)
            for counter in COUNTERS:
                sums[counter] += _num(rec.get(counter))
        out[t] = sums
    return out


def summary(
    minutes: Mapping[str, Any], keys: list[str], types: list[str], now: float
) -> dict[str, Any]:
    """Headline figures: jobs/s and p50/p95 over the last few minutes, failures in the window."""
    recent = keys[-SUMMARY_MINUTES:]
    seconds = sum(_elapsed_seconds(m, now) for m in recent) or 1.0
    finished = 0.0
    failed_recent = 0.0
    histograms = []
    for minute in recent:
        for t in types:
            rec = _record(minutes, minute, t)
            finished += _num(rec.get("succeeded")) + _num(rec.get("failed"))
            failed_recent += _num(rec.get("failed"))
            if isinstance(rec.get("latency"), dict):
                histograms.append(rec["latency"])
    merged = merge_histograms(histograms)
    totals = window_totals(minutes, keys, types)
    return {
        "rate": round(finished / seconds, 3),
        "p50": percentile(merged, 0.5),
        "p95": percentile(merged, 0.95),
        "failed_recent": failed_recent,
        "failed_window": sum(v["failed"] for v in totals.values()),
        "succeeded_window": sum(v["succeeded"] for v in totals.values()),
    }
