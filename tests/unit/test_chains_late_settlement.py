"""A deposed leader's late settlement of a chain step must not rerun the chain (issue 8, finding 6).

Chaos seed 7: the leader (epoch 2) settled step 0 of a chain and was frozen before its PATCH
left; the new leader (epoch 3) settled the same outcome, ran steps 1 and 2 and deleted the chain
record. The old PATCH then landed: step 1's record back to ``queued``, its queue entry again and
``live/chains/{id}/step`` alone (a partial record). Step 1 ran twice and its record ended up with
the second run's result while step 2 (and the chain's reply) had the first's.
"""

from __future__ import annotations

from typing import Any

from atmosphere.jobs import ChainStep, payload
from atmosphere.testing import MemoryDatabase
from tests.unit.dispatcher_kit import Clock, R, complete, inbox, make, pump, register, submit_chain


def _late_settlement_of_step_0(db: MemoryDatabase) -> None:
    """What the deposed leader's PATCH settling step 0 writes (settlement.py, a chain move)."""
    step1: dict[str, Any] = {
        "id": "ch-1",
        "type": "b",
        "name": "user1",
        "data": {"a": 1},
        "timeout": 20,
        "chain": {"id": "ch", "step": 1},
    }
    db.update(
        R,
        {
            "live/outcomes/ch-0": None,
            "live/chains/ch/step": 1,
            "jobs/ch-1": {**step1, "state": "queued"},
            "live/queue/b/ch-1": step1,
        },
    )


def test_a_late_settlement_after_the_chain_finished_neither_reruns_nor_rewrites_a_step(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "a", "b", "c")
    submit_chain(db, [ChainStep("a"), ChainStep("b"), ChainStep("c")])
    d = make(db, clock)
    for step in range(3):
        assert list(inbox(db, "c1")) == [f"ch-{step}"]
        complete(db, "c1", f"ch-{step}", result=step + 1)
        pump(db, d)
    assert payload(db.get(f"{R}/replies/m1/ch"), "result") == 3
    assert db.get(f"{R}/live/chains") is None
    _late_settlement_of_step_0(db)
    pump(db, d)
    assert inbox(db, "c1") == {}  # step 1 is not run again
    assert db.get(f"{R}/live/queue") is None
    assert db.get(f"{R}/live/chains") is None  # no partial record left behind
    assert db.get(f"{R}/jobs/ch-1/state") == "succeeded"
    assert payload(db.get(f"{R}/jobs/ch-1"), "result") == 2  # the first (and only) finish
    # The cloud handing back the deposed leader's assignment queues it again: same answer.
    db.update(
        R,
        {
            "jobs/ch-1/state": "queued",
            "live/queue/b/ch-1": {
                "id": "ch-1",
                "type": "b",
                "name": "user1",
                "timeout": 20,
                "chain": {"id": "ch", "step": 1},
            },
        },
    )
    pump(db, d)
    assert inbox(db, "c1") == {} and db.get(f"{R}/live/queue") is None
    assert db.get(f"{R}/jobs/ch-1/state") == "succeeded"
