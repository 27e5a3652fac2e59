"""Periodic schedules fired by real ``atmosphere dispatcher`` processes, through failover too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from atmosphere.scheduler.leadership.lease import Lease
from atmosphere.scheduler.ticks import manual_run_id
from atmosphere.schedules import make_schedule, set_paused, store_schedule
from tests.integration.conftest import FAST_HA_ENV as FAST
from tests.integration.conftest import ROOT
from tests.integration.dispatcher_support import DispatcherProcess, SimCloud, wait_until

pytestmark = pytest.mark.slow


def ticks(db: FirebaseDatabase, paths: Paths, name: str) -> dict[str, dict[str, Any]]:
    """Job records fired by schedule ``name``: id -> record."""
    jobs = db.get(paths.jobs()) or {}
    return {
        job_id: record
        for job_id, record in jobs.items()
        if isinstance(record, dict) and (record.get("schedule") or {}).get("name") == name
    }


def fire_times(records: dict[str, dict[str, Any]]) -> list[int]:
    return sorted(r["schedule"]["fire"] for r in records.values() if "@now" not in r["id"])


def test_a_schedule_fires_on_time_pauses_and_runs_on_request(
    url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(url, ROOT, FAST))
    cloud = SimCloud(url, ROOT, "pinger", ["ping"])
    procs.append(cloud)
    store_schedule(db, paths, make_schedule("beat", {"type": "ping", "data": 7}, every=1))

    wait_until(lambda: len(fire_times(ticks(db, paths, "beat"))) >= 3, 10, "three ticks")
    records = ticks(db, paths, "beat")
    fires = fire_times(records)
    assert all(b - a == 1000 for a, b in zip(fires, fires[1:], strict=False)), fires
    for record in records.values():
        late = record["submitted"] - record["schedule"]["fire"]
        assert 0 <= late < 1000, f"tick written {late} ms after its fire time"
    wait_until(lambda: set(records) <= set(cloud.ran), 10, "the ticks ran")
    assert records[next(iter(records))]["data"] == 7

    set_paused(db, paths, "beat", True)
    result = subprocess.run(
        [sys.executable, "-m", "atmosphere", "schedules", "run-now", "beat"]
        + ["--db-url", url, "--root", ROOT],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    try:
        wait_until(
            lambda: any(job.endswith("@beat@now") for job in cloud.ran), 10, "the requested run"
        )
    except TimeoutError:
        raise AssertionError(
            f"{db.get(paths.schedules())} {cloud.ran} {result.stdout} {procs[0].log[-3000:]}"
        ) from None
    # The run-now request was written after the pause, so the dispatcher has seen the pause.
    paused_at = len(fire_times(ticks(db, paths, "beat")))
    observe_until = time.monotonic() + 2.5  # an observation window: two periods, no tick
    while time.monotonic() < observe_until:
        assert len(fire_times(ticks(db, paths, "beat"))) == paused_at, "a paused schedule fired"
        time.sleep(0.1)
    requested = db.get(f"{paths.schedules('beat')}/last_manual")
    assert manual_run_id("beat", requested / 1000) in cloud.ran  # stored in ms
    assert db.get(f"{paths.schedules('beat')}/run_now") is None


def test_kill_9_of_the_leader_neither_repeats_nor_drops_a_tick(
    url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    dispatchers: list[DispatcherProcess] = []
    for _ in range(2):  # one by one, so a failed start still stops the first at teardown
        dispatchers.append(DispatcherProcess(url, ROOT, FAST))
        procs.append(dispatchers[-1])
    cloud = SimCloud(url, ROOT, "pinger", ["ping"])
    procs.append(cloud)
    store_schedule(db, paths, make_schedule("beat", "ping", every=1, misfire="catch_up"))
    wait_until(lambda: len(fire_times(ticks(db, paths, "beat"))) >= 2, 10, "ticking")

    lease = Lease.from_json(db.get(paths.lease))
    assert lease is not None
    owner_pid = (db.get(paths.dispatchers(lease.owner)) or {}).get("pid")
    leader = next(d for d in dispatchers if d.proc.pid == owner_pid)
    leader.kill()
    killed_at = len(fire_times(ticks(db, paths, "beat")))
    wait_until(
        lambda: len(fire_times(ticks(db, paths, "beat"))) >= killed_at + 4, 15, "ticks go on"
    )
    fires = fire_times(ticks(db, paths, "beat"))
    assert fires == list(range(fires[0], fires[-1] + 1, 1000)), "a tick was dropped"
    new = Lease.from_json(db.get(paths.lease))
    assert new is not None and new.epoch > lease.epoch
    wait_until(lambda: set(ticks(db, paths, "beat")) <= set(cloud.ran), 10, "all ticks ran")
    assert max(Counter(cloud.ran).values()) == 1, "a tick ran twice"
