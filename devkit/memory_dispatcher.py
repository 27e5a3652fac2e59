"""A dispatcher driven by hand on ``MemoryDatabase``: a controllable clock, the dispatcher made
and pumped until it settles, and the records a cloud writes to register and heartbeat (docs/protocol.md).

Shared by the dispatcher's unit tests (``tests/unit/dispatcher_kit.py`` adds the rest of the
maker's and cloud's records) and ``bench.hot_path``, which times the same dispatcher.
"""

from __future__ import annotations

from typing import Any

from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase

R = "atmosphere"
EPOCH_S = 1_800_000_000.0


class Clock:
    """A controllable clock: ``wall()`` in seconds since the epoch, ``mono()`` from zero."""

    def __init__(self) -> None:
        self.t = 0.0

    def wall(self) -> float:
        return EPOCH_S + self.t

    def mono(self) -> float:
        return self.t


def make(db: MemoryDatabase, clock: Clock, **kw: Any) -> Dispatcher:
    settings = Settings(dead_after=3.0, heartbeat_interval=1.0, retention=3600.0)
    d = Dispatcher(
        db,
        settings,
        dispatcher_id="d1",
        wall=clock.wall,
        monotonic=clock.mono,
        rand=lambda: 0.5,
        window=0.0,
        **kw,
    )
    d.subscribe()
    pump(db, d)
    return d


def pump(db: MemoryDatabase, d: Dispatcher, rounds: int = 50) -> None:
    """Run the dispatcher until it has nothing more to do."""
    for _ in range(rounds):
        before = db.writes
        db.drain()
        d.step(0)
        db.drain()
        if db.writes == before and d.intake.empty():
            return
    raise AssertionError("the dispatcher did not settle down")


def register(
    db: MemoryDatabase, cloud: str, *types: str, slots: int = 1, hb: int = 1, **extra: Any
) -> None:
    db.set(
        f"{R}/live/clouds/{cloud}",
        {"types": {t: True for t in types}, "slots": slots, "heartbeat": hb, **extra},
    )


def beat(db: MemoryDatabase, clock: Clock, *clouds: str) -> None:
    for cloud in clouds:
        db.set(f"{R}/live/clouds/{cloud}/heartbeat", int(clock.wall() * 1000))


def inbox(db: MemoryDatabase, cloud: str) -> dict[str, Any]:
    return db.get(f"{R}/live/inbox/{cloud}") or {}
