"""Jobs that kill their cloud (issue 8, finding 4), with real ``atmosphere cloud`` processes.

A handler that calls ``os._exit(1)`` is failed with ``CloudDied`` after ``max_deaths`` (default 3)
dead clouds while other jobs keep flowing. (A frozen cloud that wakes up after its job was rerun:
test_jobs_crash.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from atmosphere import Atmosphere, CloudDied
from tests.integration.conftest import CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess
from tests.integration.test_jobs_crash import record

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
