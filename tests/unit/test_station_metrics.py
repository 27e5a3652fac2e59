"""Chart series, the stats cache and the Prometheus exposition."""

from __future__ import annotations

import re
from typing import Any

from atmosphere.paths import Paths
from atmosphere.station.metrics import escape_label, render_metrics
from atmosphere.station.series import build_series, minute_range
from atmosphere.station.stats_store import StatsStore, is_closed
from atmosphere.station.views import live_snapshot
from atmosphere.stats import minute_key, minute_start
from atmosphere.testing import MemoryDatabase

T0 = minute_start("202611280400")  # a minute boundary, in seconds
T0_MS = T0 * 1000  # as stored
PATHS = Paths("atmosphere")


def rec(
    succeeded: int = 0,
    failed: int = 0,
    latency: dict[str, int] | None = None,
    queue: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"succeeded": succeeded, "failed": failed, "latency": latency or {}}
    if queue is not None:
        out["queue"] = queue
    return out


def test_minute_range_covers_both_ends() -> None:
    assert minute_range(T0 + 59, T0 + 120) == [
        "202611280400",
        "202611280401",
        "202611280402",
    ]


def test_series_rates_latency_and_gaps() -> None:
    minutes = {
        "202611280400": {"a": rec(60, 6, {"b3": 10}, queue=4)},
        "202611280402": {"a": rec(15), "b": rec(0, 3, {"b9": 1})},  # the current minute
    }
    now = T0 + 2 * 60 + 30  # 30 s into minute 02
    out = build_series(minutes, T0, now)
    assert out["types"] == ["a", "b"]
    assert out["minutes"] == [T0_MS, T0_MS + 60_000, T0_MS + 120_000]  # ms, for the page
    assert out["throughput"]["a"] == [1.1, 0.0, 0.5]  # the current minute divides by 30 s
    assert out["failures"]["b"] == [0.0, 0.0, 3.0]
    assert out["queue"]["a"] == [4.0, None, None]  # no record: a gap, not a zero
    assert out["p50"] == [10.0, None, 1000.0]
    assert out["totals"]["a"]["succeeded"] == 75 and out["totals"]["b"]["failed"] == 3
    assert out["summary"]["failed_window"] == 9


def test_stats_store_reads_by_key_range_and_keeps_counting_after_deletion() -> None:
    db = MemoryDatabase()
    now = [T0 + 10.0]
    store = StatsStore(db, PATHS, lambda: now[0])
    old = minute_key(T0 - 3 * 24 * 3600)  # outside the chart window: never read
    db.set(PATHS.stats(old), {"a": rec(1000)})
    db.set(PATHS.stats("202611280400"), {"a": rec(5, 1)})
    store.refresh()
    assert store.totals()["a"]["succeeded"] == 5
    assert old not in store.minutes()
    # more increments arrive in the open minute; then it closes, and the dispatcher deletes it
    db.set(PATHS.stats("202611280400"), {"a": rec(7, 1)})
    now[0] = T0 + 60 + 40
    store.refresh()
    assert is_closed("202611280400", now[0])
    db.set(PATHS.stats("202611280401"), {"a": rec(2)})
    db.delete(PATHS.stats("202611280400"))
    store.refresh()
    assert store.totals()["a"]["succeeded"] == 9  # 7 (closed, remembered) + 2 (open)


def test_metrics_exposition() -> None:
    live = {
        "queue": {"a": {"j1": {}, "j2": {}}, 'we"ird': {"j3": {}}},
        "clouds": {
            "c1": {"name": "c1", "types": {"a": True}, "heartbeat": T0_MS},
            "c2": {"name": "c2", "types": {"a": True}, "heartbeat": T0_MS - 60_000},
        },
        "lease": {"owner": "d", "epoch": 1, "expires": T0_MS + 1000},
    }
    snap = live_snapshot(live, T0, 6.0)
    totals = {"a": {"succeeded": 10.0, "failed": 2.0}}
    text = render_metrics(snap, totals, {"202611280400": {"a": rec(1, latency={"b6": 9, "b9": 1})}})
    lines = text.splitlines()
    assert 'atmosphere_queue_depth{type="a"} 2' in lines
    assert 'atmosphere_queue_depth{type="we\\"ird"} 1' in lines
    assert 'atmosphere_clouds{state="up"} 1' in lines
    assert 'atmosphere_clouds{state="dead"} 1' in lines
    assert 'atmosphere_jobs_succeeded_total{type="a"} 10' in lines
    assert 'atmosphere_jobs_failed_total{type="a"} 2' in lines
    assert 'atmosphere_job_latency_seconds{quantile="0.5",type="a"} 0.1' in lines
    assert 'atmosphere_job_latency_seconds{quantile="0.99",type="a"} 1' in lines
    assert "atmosphere_dispatcher_leader 1" in lines
    # every sample line is name{labels} value, and every family is typed exactly once
    sample = re.compile(
        r'^[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? -?[0-9.e+]+$'
    )
    for line in lines:
        assert line.startswith("# ") or sample.match(line), line
    types = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    assert text.endswith("\n")


def test_escape_label() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
