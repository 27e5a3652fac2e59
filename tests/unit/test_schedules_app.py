"""The app-side schedule API: ``@app.periodic`` above ``@app.task``, and ``app.schedule``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from atmosphere import Atmosphere, Ticket
from atmosphere.errors import InvalidSchedule
from atmosphere.schedules import Misfire, load_schedule
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from atmosphere.worker.cloud import Cloud

SETTINGS = Settings(heartbeat_interval=0.5, dead_after=5.0)


def make_app() -> tuple[Atmosphere, MemoryDatabase]:
    db = MemoryDatabase()
    return Atmosphere("billing", settings=SETTINGS, database=db), db


def test_periodic_is_stored_when_the_cloud_starts_and_the_task_still_works() -> None:
    app, db = make_app()

    @app.periodic("nightly-sync", cron="0 3 * * *", tz="Europe/Berlin", data={"full": True})
    @app.task("syncAll", timeout=600)
    def sync_all(ticket: Ticket, data: Any) -> Any:
        return data

    assert db.get("atmosphere/live/schedules") is None  # nothing written at import time
    assert sync_all.type == "syncAll"  # the decorator hands the Task back unchanged
    cloud = Cloud(app, name="c1")
    cloud.start()
    try:
        stored = load_schedule(db, app.paths, "nightly-sync")
        assert (stored.cron, stored.tz) == ("0 3 * * *", "Europe/Berlin")
        assert stored.job.type == "syncAll"
        assert stored.job.data == {"full": True} and stored.job.timeout == 600
    finally:
        cloud.stop(grace=1.0)
        app.close()
        db.close()


def test_schedule_writes_at_once_and_keeps_the_pause_state() -> None:
    app, db = make_app()
    defined = app.schedule("heartbeat", "ping", every=timedelta(seconds=30), misfire="catch_up")
    assert defined.every == 30 and defined.misfire is Misfire.CATCH_UP
    db.update("atmosphere/live/schedules/heartbeat", {"paused": True})
    app.schedule("heartbeat", "ping", every=timedelta(seconds=30), misfire="catch_up")
    assert load_schedule(db, app.paths, "heartbeat").paused
    app.schedule("report", {"type": "report", "data": {"x": 1}}, cron="0 * * * *")
    assert load_schedule(db, app.paths, "report").job.data == {"x": 1}
    db.close()


def test_periodic_below_task_or_malformed_is_refused_at_definition() -> None:
    app, db = make_app()
    with pytest.raises(InvalidSchedule, match="goes above @task"):

        @app.task("x")
        @app.periodic("wrong-order", every=60)  # type: ignore[arg-type]
        def handler(ticket: Ticket, data: Any) -> Any:
            return None

    with pytest.raises(InvalidSchedule, match="5 fields"):

        @app.periodic("bad", cron="every night")
        @app.task("y")
        def other(ticket: Ticket, data: Any) -> Any:
            return None

    with pytest.raises(InvalidSchedule, match="time zone"):
        app.schedule("tz", "ping", cron="0 3 * * *", tz="Berlin")
    assert db.get("atmosphere/live/schedules") is None
    db.close()
