"""How many database writes the dispatcher issues per job under a burst (a figure, and a bound)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.settings import Settings
from tests.integration.dispatcher_support import SimCloud, submit, wait_until
from tests.support import ServerProcess

BURST = 1000


@pytest.mark.slow
def test_writes_per_job_under_a_burst_of_1000(db_server: ServerProcess, ns: str) -> None:
    url = db_server.db_url(ns)
    paths = Paths("atmosphere")
    settings = Settings.from_url(url)
    db = FirebaseDatabase(url)
    dispatcher_db = FirebaseDatabase(url)
    dispatcher = Dispatcher(dispatcher_db, settings, gc_interval=3600)
    clouds = [SimCloud(url, "atmosphere", f"c{i}", ["burst"], slots=4) for i in range(2)]
    try:
        dispatcher.start()
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda i: submit(db, paths, "burst", i), range(BURST)))
        wait_until(lambda: sum(len(c.ran) for c in clouds) >= BURST, 120, "burst done")
        wait_until(lambda: db.get(paths.outcomes(), shallow=True) is None, 30, "all settled")
        elapsed = time.monotonic() - started
        dispatcher.sync()
        updates = dispatcher.batch.updates
        per_job = updates / BURST
        print(
            f"\nburst of {BURST}: {updates} dispatcher updates ({per_job:.3f}/job), "
            f"{dispatcher.batch.paths} paths, {elapsed:.1f}s, counts={dispatcher.counts}"
        )
        assert len(set(ids)) == BURST
        assert dispatcher.counts.get("assigned") == BURST
        assert dispatcher.counts.get("succeeded") == BURST
        assert per_job <= 2.0  # assign + settle, batched: never more than two per job
    finally:
        for cloud in clouds:
            cloud.close()
        dispatcher.stop()
        dispatcher_db.close()
        db.close()
