"""``@app.periodic`` end to end: a real cloud process stores the schedule, the dispatcher fires it,
the cloud runs the ticks. This module is also the app the cloud loads
(``atmosphere cloud tests.integration.test_schedules_cloud``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from atmosphere import Atmosphere, Ticket
from atmosphere.db.client import FirebaseDatabase
from atmosphere.jobs import payload
from atmosphere.paths import Paths
from tests.integration.dispatcher_support import DispatcherProcess, wait_until

app = Atmosphere("scheduled")


@app.periodic("every-second", every=1, data={"hello": "tick"})
@app.task("beat")
def beat(ticket: Ticket, data: Any) -> Any:
    """Each tick's job: say which process ran it."""
    return {"data": data, "pid": os.getpid(), "name": ticket["name"]}


pytestmark = pytest.mark.slow


def test_a_periodic_task_is_defined_by_its_cloud_and_ticks_run_there(
    db_url: str, dispatcher: DispatcherProcess, start_cloud: Callable[..., Any]
) -> None:
    paths = Paths("atmosphere")
    cloud = start_cloud("tests.integration.test_schedules_cloud", name="scheduled")
    db = FirebaseDatabase(db_url)
    try:
        stored = db.get(paths.schedules("every-second"))
        assert stored["every"] == 1 and stored["job"]["type"] == "beat"

        def finished_ticks() -> list[dict[str, Any]]:
            jobs = db.get(paths.jobs()) or {}
            return [
                r
                for r in jobs.values()
                if isinstance(r, dict)
                and (r.get("schedule") or {}).get("name") == "every-second"
                and r.get("state") == "succeeded"
            ]

        ticks = wait_until(lambda: len(finished_ticks()) >= 2 and finished_ticks(), 15, "ticks")
        results = [payload(t, "result") for t in ticks]
        assert all(r["pid"] == cloud.pid for r in results)
        assert all(r["data"] == {"hello": "tick"} for r in results)
        assert all(r["name"] == "every-second" for r in results)
    finally:
        db.close()
