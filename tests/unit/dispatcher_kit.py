"""The dispatcher's unit-test kit: a controllable clock, a dispatcher on MemoryDatabase, and the
records makers and clouds would write (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import ChainState, ChainStep
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
        if db.writes == before and d._inbox.empty():
            return
    raise AssertionError("the dispatcher did not settle down")


def submit(db: MemoryDatabase, job_id: str, job_type: str = "t", **extra: Any) -> None:
    spec = {
        "id": job_id,
        "type": job_type,
        "name": "n",
        "timeout": 30,
        "submitted": SERVER_TIMESTAMP,
        **extra,
    }
    db.update(
        R, {f"jobs/{job_id}": {**spec, "state": "queued"}, f"live/queue/{job_type}/{job_id}": spec}
    )


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


def complete(
    db: MemoryDatabase,
    cloud: str,
    job_id: str,
    *,
    ok: bool = True,
    result: Any = None,
    retry: bool = False,
    attempt: int | None = None,
    **extra: Any,
) -> None:
    """What a cloud writes when an attempt ends (docs/protocol.md, the complete row)."""
    spec = db.get(f"{R}/live/inbox/{cloud}/{job_id}") or {}
    outcome: dict[str, Any] = {
        "cloud": cloud,
        "attempt": attempt or spec.get("attempt", 1),
        "ok": ok,
        "finished": SERVER_TIMESTAMP,
        **extra,
    }
    if ok:
        outcome["result"] = result
    else:
        outcome["error"] = {"kind": "JobFailed", "message": "boom"}
    if retry:
        outcome["retry"] = True
    db.update(
        R,
        {
            f"live/inbox/{cloud}/{job_id}": None,
            f"live/outcomes/{job_id}": outcome,
            f"jobs/{job_id}/state": "succeeded" if ok else ("retrying" if retry else "failed"),
            f"jobs/{job_id}/finished": SERVER_TIMESTAMP,
        },
    )


def submit_chain(db: MemoryDatabase, steps: list[ChainStep], reply_to: str | None = "m1") -> None:
    state = ChainState(id="ch", name="user1", steps=tuple(steps), timeout=20, reply_to=reply_to)
    first = {
        "id": "ch-0",
        "type": steps[0].type,
        "name": "user1",
        "data": steps[0].data,
        "timeout": 20,
        "chain": {"id": "ch", "step": 0},
    }
    db.update(
        R,
        {
            "live/chains/ch": {**state.to_json(), "submitted": SERVER_TIMESTAMP},
            "jobs/ch-0": {**first, "state": "queued"},
            f"live/queue/{steps[0].type}/ch-0": first,
        },
    )
