"""The dispatcher's unit-test kit: a controllable clock, a dispatcher on MemoryDatabase, and the
records makers and clouds would write (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import ChainState, ChainStep
from atmosphere.testing import MemoryDatabase
from devkit.memory_dispatcher import EPOCH_S, Clock, R, beat, inbox, make, pump, register

__all__ = [
    "EPOCH_S",
    "R",
    "Clock",
    "beat",
    "complete",
    "inbox",
    "make",
    "pump",
    "register",
    "submit",
    "submit_chain",
]


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
