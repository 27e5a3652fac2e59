"""Several real clouds, and a dispatcher restart mid-stream (real processes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atmosphere import Atmosphere
from tests.integration.conftest import FAST_ENV, ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until

pytestmark = pytest.mark.slow


def test_two_exclusive_clouds_share_the_work(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    clouds = [start_cloud(name="a"), start_cloud(name="b")]
    handles = [maker.tasks["sleep"].submit(data=0.2, timeout=60) for _ in range(6)]
    pids = [h.get()["pid"] for h in handles]
    assert set(pids) == {c.pid for c in clouds}


def test_a_dispatcher_killed_mid_stream_loses_no_job(
    db_url: str, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    first = DispatcherProcess(db_url, ROOT, FAST_ENV)
    second: DispatcherProcess | None = None
    try:
        start_cloud(name="a")
        start_cloud(name="b")
        handles = [maker.tasks["sleep"].submit(data=0.05, timeout=90) for _ in range(30)]
        wait_until(lambda: sum(h.done() for h in handles) >= 3, 30, "some jobs done")
        first.kill()
        assert not all(h.done() for h in handles)
        second = DispatcherProcess(db_url, ROOT, FAST_ENV)
        assert [h.get()["slept"] for h in handles] == [0.05] * 30
        states = maker.database.get(f"{ROOT}/jobs") or {}
        assert all(states[h.id]["state"] == "succeeded" for h in handles)
    finally:
        first.kill()
        if second is not None:
            second.kill()
