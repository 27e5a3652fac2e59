"""PeriodicComponent inside the real Dispatcher loop, on the in-memory database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from atmosphere.paths import Paths
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.scheduler.periodic import PeriodicComponent
from atmosphere.scheduler.ticks import manual_run_id, tick_id
from atmosphere.schedules import make_schedule, request_run, store_schedule
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from devkit.memory_dispatcher import EPOCH_S, Clock

PATHS = Paths("atmosphere")
START = EPOCH_S  # a whole minute


class Switch:
    """A Leadership that a test turns on and off."""

    def __init__(self, epoch: int, leading: bool) -> None:
        self.epoch = epoch
        self.leading = leading

    def is_leader(self) -> bool:
        return self.leading


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[MemoryDatabase]:
    database = MemoryDatabase(clock=clock.wall)
    yield database
    database.close()


def make(db: MemoryDatabase, clock: Clock, name: str, leadership: Switch) -> Dispatcher:
    d = Dispatcher(
        db,
        Settings(dead_after=600.0, heartbeat_interval=1.0),
        dispatcher_id=name,
        leadership=leadership,
        components=[PeriodicComponent(PATHS)],
        wall=clock.wall,
        monotonic=clock.mono,
        window=0.0,
        announce=False,
    )
    d.subscribe()
    pump(db, d)
    return d


def pump(db: MemoryDatabase, *dispatchers: Dispatcher) -> None:
    for _ in range(50):
        before = db.writes
        for d in dispatchers:
            db.drain()
            d.step(0)  # apply the events
            d._next_look()  # where the loop runs its components
            d.step(0)  # flush what they wrote
        db.drain()
        if db.writes == before:
            return
    raise AssertionError("the dispatchers did not settle down")


def queued(db: MemoryDatabase) -> dict[str, Any]:
    return db.get("atmosphere/live/queue/ping") or {}


def test_the_leader_fires_on_time_and_the_job_is_assigned(db: MemoryDatabase, clock: Clock) -> None:
    store_schedule(db, PATHS, make_schedule("beat", "ping", every=60))
    db.set("atmosphere/live/clouds/c1", {"types": {"ping": True}, "slots": 1, "heartbeat": 1})
    d = make(db, clock, "d1", Switch(3, True))
    clock.t = 59.9
    pump(db, d)
    assert queued(db) == {} and db.get("atmosphere/live/inbox/c1") is None
    clock.t = 60.05
    pump(db, d)
    job_id = tick_id("beat", START + 60)
    inbox = db.get("atmosphere/live/inbox/c1") or {}
    assert list(inbox) == [job_id]
    assert inbox[job_id]["epoch"] == 3
    assert db.get("atmosphere/live/schedules/beat/last") == (START + 60) * 1000  # ms, as stored


def test_a_standby_fires_nothing_and_a_new_leader_does_not_refire(
    db: MemoryDatabase, clock: Clock
) -> None:
    store_schedule(db, PATHS, make_schedule("beat", "ping", every=60))
    old, new = Switch(1, True), Switch(2, False)
    d1, d2 = make(db, clock, "d1", old), make(db, clock, "d2", new)
    clock.t = 60.05
    pump(db, d1, d2)
    assert list(queued(db)) == [tick_id("beat", START + 60)]
    old.leading, new.leading = False, True  # failover
    clock.t = 61.0
    pump(db, d1, d2)
    assert len(queued(db)) == 1
    clock.t = 120.05
    pump(db, d1, d2)
    assert list(queued(db)) == [
        tick_id("beat", START + 60),
        tick_id("beat", START + 120),
    ]
    fired = [
        list(c.periodic.fired) for d in (d1, d2) for c in d.components if hasattr(c, "periodic")
    ]
    assert fired == [
        [tick_id("beat", START + 60)],
        [tick_id("beat", START + 120)],
    ]


def test_a_run_now_request_on_a_quiet_schedule_fires_at_once(
    db: MemoryDatabase, clock: Clock
) -> None:
    store_schedule(db, PATHS, make_schedule("hourly", "ping", every=3600))
    d = make(db, clock, "d1", Switch(1, True))
    clock.t = 5.0
    pump(db, d)
    assert queued(db) == {}
    request_run(db, PATHS, "hourly")
    pump(db, d)
    requested = db.get("atmosphere/live/schedules/hourly/last_manual")
    assert list(queued(db)) == [manual_run_id("hourly", requested / 1000)]  # stored in ms
