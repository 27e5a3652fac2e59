"""Dispatcher high availability with real processes: one leader, clean hand-over, kill -9 takeover.

Every test runs two or three ``atmosphere dispatcher`` processes against the embedded server, with
simulated clouds that record every job they run (so a double assignment shows up as a job run
twice) and a steady stream of jobs and chains submitted meanwhile.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.db.client import FirebaseDatabase
from atmosphere.jobs import ChainState, ChainStep
from atmosphere.paths import Paths
from atmosphere.scheduler.leadership.lease import Lease
from tests.integration.conftest import FAST_HA_ENV as FAST
from tests.integration.conftest import ROOT
from tests.integration.dispatcher_support import (
    DispatcherProcess,
    SimCloud,
    states,
    submit,
    wait_until,
)

pytestmark = pytest.mark.slow


def lease(db: FirebaseDatabase, paths: Paths) -> Lease | None:
    return Lease.from_json(db.get(paths.lease))


def owner_pid(db: FirebaseDatabase, paths: Paths) -> int | None:
    current = lease(db, paths)
    if current is None or current.released:
        return None
    presence = db.get(paths.dispatchers(current.owner)) or {}
    pid = presence.get("pid")
    return pid if isinstance(pid, int) else None


def leader_of(db: FirebaseDatabase, paths: Paths, *ds: DispatcherProcess) -> DispatcherProcess:
    """Wait until one of ``ds`` holds the lease; return it."""
    pids = {d.proc.pid: d for d in ds}
    pid = wait_until(lambda: owner_pid(db, paths) in pids and owner_pid(db, paths), 10, "leader")
    return pids[pid]


def submit_chain(db: FirebaseDatabase, paths: Paths, chain_id: str, types: list[str]) -> None:
    """What a maker writes for a chain: the chain record and its first step, in one PATCH."""
    steps = tuple(ChainStep(t, {"own": t}) for t in types)
    state = ChainState(id=chain_id, name=chain_id, steps=steps, timeout=60, reply_to="chains")
    first: dict[str, Any] = {
        "id": f"{chain_id}-0",
        "type": types[0],
        "name": chain_id,
        "data": {"own": types[0]},
        "timeout": 60,
        "chain": {"id": chain_id, "step": 0},
        "submitted": SERVER_TIMESTAMP,
    }
    db.update(
        "",
        {
            paths.chains(chain_id): {**state.to_json(), "submitted": SERVER_TIMESTAMP},
            paths.jobs(first["id"]): {**first, "state": "queued"},
            paths.queue(types[0], first["id"]): first,
        },
    )


class Stream:
    """Submits a job every ``gap`` seconds (and a 3-step chain every 10th) until stopped."""

    def __init__(self, url: str, paths: Paths, gap: float = 0.02) -> None:
        self.db = FirebaseDatabase(url)
        self.paths = paths
        self.gap = gap
        self.jobs: list[str] = []
        self.chains: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.gap):
            n += 1
            if n % 10 == 0:
                chain_id = f"chain{n}"
                submit_chain(self.db, self.paths, chain_id, ["work", "work", "work"])
                self.chains.append(chain_id)
            else:
                self.jobs.append(submit(self.db, self.paths, "work", n, reply_to="stream"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.db.close()


def run_counts(*clouds: SimCloud) -> Counter[str]:
    return Counter(job for cloud in clouds for job in cloud.ran)


def test_one_leader_and_a_clean_stop_hands_over_at_once(
    url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    first = DispatcherProcess(url, ROOT, {**FAST, "ATMOSPHERE_LEASE_SECONDS": "5"})
    procs.append(first)
    assert leader_of(db, paths, first) is first
    second = DispatcherProcess(url, ROOT, {**FAST, "ATMOSPHERE_LEASE_SECONDS": "5"})
    procs.append(second)
    wait_until(lambda: len(db.get(paths.dispatchers()) or {}) == 2, 10, "both present")
    roles = sorted(d["role"] for d in (db.get(paths.dispatchers()) or {}).values())
    assert roles == ["leader", "standby"]
    before = lease(db, paths)
    assert before is not None
    cloud = SimCloud(url, ROOT, "c1", ["work"])
    procs.append(cloud)

    stopped = time.monotonic()
    assert first.stop() == 0
    assert leader_of(db, paths, second) is second
    took = time.monotonic() - stopped
    after = lease(db, paths)
    assert after is not None and after.epoch == before.epoch + 1
    assert took < 5 / 2, f"hand-over took {took:.2f}s: it waited for the 5 s lease to lapse"
    job = submit(db, paths, "work", "after hand-over")
    wait_until(lambda: states(db, paths).get(job) == "succeeded", 10, "the new leader assigns")
    assert db.get(paths.inbox("c1")) is None
    assert (db.get(paths.jobs(job)) or {}).get("state") == "succeeded"
    wait_until(lambda: len(db.get(paths.dispatchers()) or {}) == 1, 10, "presence withdrawn")


def fleet_under_load(
    url: str, paths: Paths, procs: list[Any]
) -> tuple[list[DispatcherProcess], list[SimCloud], Stream]:
    """Two dispatchers, two clouds and a steady stream of jobs and chains, already flowing."""
    dispatchers: list[DispatcherProcess] = []
    for _ in range(2):  # one by one, so a failed start still stops the first at teardown
        dispatchers.append(DispatcherProcess(url, ROOT, FAST))
        procs.append(dispatchers[-1])
    clouds = [SimCloud(url, ROOT, f"c{i}", ["work"], slots=2, work=0.01) for i in range(2)]
    procs.extend(clouds)
    stream = Stream(url, paths)
    procs.append(stream)
    wait_until(lambda: len(run_counts(*clouds)) >= 20, 20, "the stream is flowing")
    return dispatchers, clouds, stream


def test_kill_9_of_the_leader_under_load_loses_and_repeats_nothing(
    url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    dispatchers, clouds, stream = fleet_under_load(url, paths, procs)

    leader = leader_of(db, paths, *dispatchers)
    old = lease(db, paths)
    assert old is not None
    leader.kill()
    killed = time.monotonic()
    standby = next(d for d in dispatchers if d is not leader)
    assert leader_of(db, paths, standby) is standby
    took = time.monotonic() - killed
    assert took < 5.0, f"takeover took {took:.2f}s"
    new = lease(db, paths)
    assert new is not None and new.epoch > old.epoch

    dispatchers.append(DispatcherProcess(url, ROOT, FAST))  # a fresh standby joins
    procs.append(dispatchers[-1])
    wait_until(lambda: len(run_counts(*clouds)) >= len(stream.jobs) + 40, 20, "more ran")
    stream.close()
    submitted = list(stream.jobs) + [f"{c}-{s}" for c in stream.chains for s in range(3)]

    def all_done() -> bool:
        now = states(db, paths)
        return all(now.get(job) == "succeeded" for job in submitted)

    try:
        wait_until(all_done, 30, "every job and every chain step done")
    except TimeoutError:
        now = states(db, paths)
        missing = {job: now.get(job) for job in submitted if now.get(job) != "succeeded"}
        records = {job: db.get(paths.jobs(job)) for job in list(missing)[:5]}
        raise AssertionError(
            f"not done: {missing}\nrecords: {records}\nlive: {db.get(paths.live)}\n"
            f"standby log:\n{standby.log[-3000:]}"
        ) from None
    counts = run_counts(*clouds)
    twice = {job: n for job, n in counts.items() if n > 1}
    assert twice == {}, f"jobs run more than once: {twice}"
    assert set(submitted) <= set(counts)
    replies = db.get(paths.replies("chains")) or {}
    assert set(stream.chains) <= set(replies), "a chain lost its reply"
    inbox_epochs = {
        spec.get("epoch")
        for cloud in (db.get(paths.inbox()) or {}).values()
        for spec in cloud.values()
    }
    assert inbox_epochs <= {new.epoch, None}
    assert "Traceback" not in standby.log


def test_a_frozen_leader_that_wakes_up_is_fenced_and_steps_down(
    url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    """SIGSTOP the leader (a long GC pause, a frozen VM): a standby takes over; on SIGCONT the
    old leader must not act on its stale view: no job runs twice, and it rejoins as a standby."""
    dispatchers, clouds, stream = fleet_under_load(url, paths, procs)

    frozen = leader_of(db, paths, *dispatchers)
    old = lease(db, paths)
    assert old is not None
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        other = next(d for d in dispatchers if d is not frozen)
        assert leader_of(db, paths, other) is other
        wait_until(lambda: len(run_counts(*clouds)) >= len(stream.jobs) - 5, 20, "caught up")
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: "no longer leads" in frozen.log, 10, "the old leader stepped down")
    wait_until(
        lambda: (db.get(paths.dispatchers(old.owner)) or {}).get("role") == "standby",
        10,
        "it rejoined as a standby",
    )
    stream.close()
    submitted = list(stream.jobs) + [f"{c}-{s}" for c in stream.chains for s in range(3)]
    wait_until(
        lambda: all(states(db, paths).get(job) == "succeeded" for job in submitted), 30, "all done"
    )
    twice = {job: n for job, n in run_counts(*clouds).items() if n > 1}
    assert twice == {}, f"jobs run more than once: {twice}"
    current = lease(db, paths)
    assert current is not None and current.owner != old.owner and current.epoch > old.epoch
