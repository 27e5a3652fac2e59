"""Delayed jobs end to end: ``countdown``/``eta`` from the public API, held by the dispatcher,
queued on time, surviving a kill -9 of the leader while they wait."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from atmosphere.app import Atmosphere
from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from atmosphere.scheduler.leadership.lease import Lease
from atmosphere.settings import Settings
from tests.integration.conftest import FAST_HA_ENV as FAST
from tests.integration.conftest import ROOT
from tests.integration.dispatcher_support import DispatcherProcess, SimCloud, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def app(url: str) -> Iterator[Atmosphere]:
    maker = Atmosphere("delayed-maker")
    database = FirebaseDatabase(url)
    maker.configure(settings=Settings.from_url(url, root=ROOT), database=database)
    yield maker
    maker.close()
    database.close()


def test_delayed_jobs_wait_survive_a_leader_kill_and_run_once_on_time(
    url: str, db: FirebaseDatabase, app: Atmosphere, procs: list[Any]
) -> None:
    paths = Paths(ROOT)
    dispatchers: list[DispatcherProcess] = []
    for _ in range(2):  # one by one, so a failed start still stops the first at teardown
        dispatchers.append(DispatcherProcess(url, ROOT, FAST))
        procs.append(dispatchers[-1])
    cloud = SimCloud(url, ROOT, "later", ["later"])
    procs.append(cloud)
    wait_until(lambda: Lease.from_json(db.get(paths.lease)) is not None, 10, "a leader")

    submitted = time.time()
    by_countdown = app.submit({"type": "later", "data": "countdown"}, lambda e, d: None)
    soon = app.submit({"type": "later", "data": "soon", "countdown": 0.3}, lambda e, d: None)
    assert app.maker.flush(10)  # submit() returns before the outbox writes
    assert db.get(paths.delayed(soon.id)) is not None or soon.id in cloud.ran
    waiting = [
        app.submit({"type": "later", "data": n, "countdown": 4.0}, lambda e, d: None)
        for n in range(3)
    ]
    assert app.maker.flush(10)
    assert all(db.get(paths.delayed(h.id)) is not None for h in waiting)
    wait_until(lambda: soon.id in cloud.ran and by_countdown.id in cloud.ran, 10, "short ones")

    lease = Lease.from_json(db.get(paths.lease))
    assert lease is not None
    pid = (db.get(paths.dispatchers(lease.owner)) or {}).get("pid")
    next(d for d in dispatchers if d.proc.pid == pid).kill()  # while the others wait

    wait_until(lambda: all(h.id in cloud.ran for h in waiting), 15, "the delayed jobs ran")
    for handle in waiting:
        record = db.get(paths.jobs(handle.id))
        assert record["assigned"] >= submitted * 1000 + 4000 - 50, "ran before its countdown"
    assert all(db.get(paths.delayed(h.id)) is None for h in waiting)
    assert max(Counter(cloud.ran).values()) == 1, "a delayed job ran twice"
    assert [h.get(timeout=10)["echo"] for h in waiting] == [0, 1, 2]  # one reply each
