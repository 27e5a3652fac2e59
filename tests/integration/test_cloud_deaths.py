"""Jobs that kill their cloud, and clouds declared dead that wake up (issue 8, findings 4 and 6).

Real ``atmosphere cloud`` processes: a handler that calls ``os._exit(1)`` is failed with
``CloudDied`` after ``max_deaths`` (default 3) dead clouds while other jobs keep flowing; a frozen
cloud that finishes after its job was rerun elsewhere does not overwrite the record the caller saw.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atmosphere import Atmosphere, CloudDied
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until
from tests.integration.test_jobs_crash import record, submit_gated

pytestmark = pytest.mark.slow


def test_a_job_that_kills_its_cloud_is_failed_after_three_deaths_while_others_flow(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
) -> None:
    clouds = [start_cloud(name=f"c{i}") for i in range(4)]
    responses: list[Any] = []
    poison = maker.tasks["die"].submit(
        data=None, timeout=60, callback=lambda e, d: responses.append((e, d))
    )
    flowing = [maker.tasks["echo"].submit(data=i, timeout=60) for i in range(20)]
    with pytest.raises(CloudDied, match="the cloud running it died 3 times"):
        poison.get()
    assert [h.get()["echo"] for h in flowing] == list(range(20))
    dead = [c for c in clouds if not c.alive()]
    assert len(dead) == 3 and all(c.proc.returncode == 1 for c in dead)
    job = record(maker, poison.id)
    assert job["state"] == "failed" and job["deaths"] == 3
    assert job["error"]["kind"] == "CloudDied"
    # The last cloud standing still works, and the caller was answered exactly once.
    assert maker.tasks["echo"].submit(data="after", timeout=30).get()["echo"] == "after"
    assert len(responses) == 1 and isinstance(responses[0][0], CloudDied)


def test_a_frozen_cloud_finishing_after_the_rerun_does_not_overwrite_the_record(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    tmp_path: Path,
) -> None:
    frozen = start_cloud(name="frozen")
    gate, handle, responses = submit_gated(maker, tmp_path)
    registry = f"{ROOT}/live/clouds"
    wait_until(
        lambda: maker.database.get(f"{registry}/{frozen.cloud_id}/running") == 1, 20, "running"
    )
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        other = start_cloud(name="other")
        wait_until(
            lambda: maker.database.get(f"{registry}/{frozen.cloud_id}") is None, 20, "declared dead"
        )
        gate.touch()
        assert handle.get()["pid"] == other.pid  # the rerun answered first
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    # Awake, the frozen cloud completes its run too, writing the record; the dispatcher records
    # that finish as late and, in the same update, puts the first one back.
    wait_until(
        lambda: f"{frozen.cloud_id}-1" in (record(maker, handle.id).get("late") or {}),
        20,
        "the frozen cloud's finish recorded as late",
    )
    job = record(maker, handle.id)
    assert job["result"]["pid"] == other.pid and job["cloud"] == other.cloud_id
    assert job["state"] == "succeeded"
    assert len(responses) == 1 and responses[0][1]["pid"] == other.pid
