"""Poison decisions (issue 8, findings 2 and 7): what the database refuses never stops dispatching,
and a failure nobody waits for is logged.

Given one decision the database refuses in a batch with ordinary ones, I expect the ordinary ones
written, the poison job dead-lettered with the reason and its caller answered once.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.errors import RequestRefused
from atmosphere.jobs import ChainState, ChainStep, JobSpec
from atmosphere.scheduler.batcher import WriteBatch
from atmosphere.scheduler.settlement import unheard_failure
from atmosphere.storable import MAX_VALUE_BYTES
from atmosphere.testing import MemoryDatabase
from tests.unit.dispatcher_kit import (
    Clock,
    R,
    beat,
    complete,
    inbox,
    make,
    pump,
    register,
    submit,
    submit_chain,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def resync(db: MemoryDatabase, d: Any, clock: Clock) -> None:
    """Let the dispatcher's resync timer fire (the cloud beating meanwhile), then run it dry."""
    clock.t += 1.0
    beat(db, clock, "c1")
    pump(db, d)


# -- the database refuses what the server refuses -------------------------------------------


def test_memory_database_counts_depth_from_the_root_and_limits_the_body() -> None:
    db = MemoryDatabase(max_body=1000)
    db.set("a/b", nested(30))  # 2 + 30 levels: as deep as the server allows
    with pytest.raises(RequestRefused):
        db.update("a", {"b/c": nested(30)})  # 3 + 30 levels
    with pytest.raises(RequestRefused) as info:
        db.update("", {"x": "y" * 2000})
    assert info.value.status == 413
    with pytest.raises(RequestRefused):
        db.update("", {"x/a.b": 1})
    assert db.get("x") is None


# -- the batcher -----------------------------------------------------------------------------


def test_a_refused_batch_is_bisected_down_to_the_poison_decision() -> None:
    db = MemoryDatabase()
    batch = WriteBatch()
    for i in range(8):
        if i == 5:
            batch.update({"r/deep": nested(40), "r/with_poison": i}, tag="poison")
        else:
            batch.update({f"r/good/g{i}": i, "r/last": i}, tag=i)
    refused = batch.flush(db)
    assert [r.group.tag for r in refused] == ["poison"]
    assert isinstance(refused[0].error, RequestRefused)
    assert db.get("r/good") == {f"g{i}": i for i in range(8) if i != 5}
    assert db.get("r/last") == 7  # halves go out in order: the later write still wins
    assert db.get("r/with_poison") is None  # a decision's writes stay together
    assert db.writes == 3  # 8 -> 4 + [2 -> 1 + 1] + 2: one good update per good part


def test_a_decision_that_builds_on_a_refused_one_is_dropped_not_written_alone() -> None:
    db = MemoryDatabase(max_body=1000)
    batch = WriteBatch()
    batch.update({"r/before": 1})
    batch.update({"r/queue/j2": "x" * 600, "r/jobs/j2": "x" * 600}, tag="settle j1, queue j2")
    batch.update({"r/queue/j2": None, "r/inbox/j2": "x" * 600}, tag="assign j2")  # fits alone
    batch.update({"r/after": 1})
    refused = batch.flush(db)
    assert [r.group.tag for r in refused] == ["settle j1, queue j2"]
    assert db.get("r") == {"before": 1, "after": 1}  # no inbox entry for a job never queued


def test_a_batch_over_the_size_limit_is_cut_before_it_is_sent() -> None:
    db = MemoryDatabase(max_body=1000)
    batch = WriteBatch(max_bytes=1000)
    for i in range(6):
        batch.update({f"r/k{i}": "x" * 300})
    batch.update({"r/huge": "x" * 2000}, tag="huge")
    refused = batch.flush(db)
    assert [(r.group.tag, r.error.status) for r in refused] == [("huge", 413)]
    assert sorted(db.get("r")) == [f"k{i}" for i in range(6)]
    assert db.writes == 2 and batch.updates == 2  # three decisions a time, none refused


# -- the dispatcher ----------------------------------------------------------------------------


def test_a_chain_step_too_big_to_pass_on_ends_the_chain_and_the_rest_flows(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "a", "b", "t", slots=5)
    submit_chain(db, [ChainStep("a"), ChainStep("b", {"own": 1})])
    d = make(db, clock)
    # Over what one value may take, as the next step's data: it would be written twice.
    complete(db, "c1", "ch-0", result="x" * MAX_VALUE_BYTES)
    submit(db, "j1", reply_to="m2")
    pump(db, d)
    assert "j1" in inbox(db, "c1")  # an ordinary job in the same round was assigned
    record = db.get(f"{R}/jobs/ch-0")
    assert record["state"] == "failed" and record["error"]["kind"] == "InvalidResult"
    assert "cannot be passed on to step 1 (b)" in record["error"]["message"]
    assert f"over the {MAX_VALUE_BYTES}-byte limit" in record["error"]["message"]
    reply = db.get(f"{R}/replies/m1/ch")
    assert reply["ok"] is False and reply["error"]["kind"] == "InvalidResult"
    assert db.get(f"{R}/live/chains") is None and db.get(f"{R}/jobs/ch-1") is None
    assert db.get(f"{R}/live/outcomes") is None
    assert d.counts.get("refused", 0) == 0  # refused before anything was sent


def test_a_decision_the_database_refuses_is_dead_lettered_and_the_rest_flows(
    clock: Clock,
) -> None:
    # The next step's data (its own + the result, twice: record and queue entry) is over the
    # body limit, which nothing checks before sending: the database itself refuses the batch.
    db = MemoryDatabase(clock=clock.wall, max_body=64_000)
    register(db, "c1", "a", "b", "t", slots=5)
    submit_chain(db, [ChainStep("a"), ChainStep("b")])
    submit(db, "j1", reply_to="m2")
    d = make(db, clock)
    assert set(inbox(db, "c1")) == {"ch-0", "j1"}
    complete(db, "c1", "ch-0", result="x" * 40_000)
    complete(db, "c1", "j1", result=1)
    submit(db, "j2")
    db.drain()
    d.step(0)  # one batch: settle ch-0 (refused), settle j1, assign j2
    assert d.counts["refused"] == 1 and d.counts["dead_lettered"] == 1
    assert "j2" in inbox(db, "c1") and db.get(f"{R}/live/outcomes/j1") is None
    record = db.get(f"{R}/jobs/ch-0")
    assert record["state"] == "failed" and record["error"]["type"] == "RequestRefused"
    assert "exceeds 64000 bytes" in record["error"]["message"]
    assert db.get(f"{R}/replies/m1/ch")["error"] == record["error"]
    assert db.get(f"{R}/live/chains") is None and db.get(f"{R}/live/outcomes") is None
    resync(db, d, clock)
    # After the resync: nothing of the poison chain is decided again, new jobs flow.
    submit(db, "j3")
    complete(db, "c1", "j2", result=2)
    pump(db, d)
    assert "j3" in inbox(db, "c1") and d.counts["refused"] == 1
    assert db.get(f"{R}/jobs/ch-1") is None


class RefusingDatabase(MemoryDatabase):
    """Refuses every update that touches ``poison`` (garbage the dispatcher cannot foresee)."""

    refused = 0

    def update(self, path: str, values: Any) -> None:
        if any("poison" in key for key in values):
            self.refused += 1
            raise RequestRefused("HTTP 400: Invalid data", status=400)
        super().update(path, values)


def test_a_job_whose_dead_letter_is_refused_too_is_set_aside_with_an_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    db = RefusingDatabase(clock=clock.wall)
    register(db, "c1", "t", slots=5)
    MemoryDatabase.update(db, R, {"live/queue/t/poison": {"id": "poison", "type": "t"}})
    submit(db, "j1")
    d = make(db, clock)
    assert "j1" in inbox(db, "c1")
    # The whole batch, the half holding the assignment, the assignment, then its dead letter.
    assert db.refused == 4
    assert "poison" in d.poisoned
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("job poison: the database refused the write to assign it" in m for m in errors)
    assert any("refused its dead letter too" in m for m in errors)
    for _ in range(5):  # never tried again, however long it runs
        resync(db, d, clock)
        submit(db, f"k{_}")
        pump(db, d)
    assert db.refused == 4 and len(inbox(db, "c1")) == 5


def test_a_late_outcome_from_a_cloud_whose_name_is_no_key_is_recorded(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j1")
    d = make(db, clock)
    complete(db, "c1", "j1", result=1)
    pump(db, d)
    late = {"cloud": "host.example.com/1", "attempt": 1, "ok": True, "finished": SERVER_TIMESTAMP}
    db.set(f"{R}/live/outcomes/j1", late)  # a second outcome of the same attempt
    submit(db, "j2")
    pump(db, d)
    assert db.get(f"{R}/jobs/j1/late") == {
        "host_example_com_1-1": {
            "cloud": "host.example.com/1",
            "attempt": 1,
            "ok": True,
            "finished": int(clock.wall() * 1000),
        }
    }
    assert "j2" in inbox(db, "c1") and db.get(f"{R}/live/outcomes") is None


# -- fire-and-forget failures (finding 7) --------------------------------------------------------


def test_a_fire_and_forget_chain_failure_is_logged_and_recorded(
    db: MemoryDatabase, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    register(db, "c1", "a", "b", "c")
    submit_chain(db, [ChainStep("a"), ChainStep("b"), ChainStep("c")], reply_to=None)
    d = make(db, clock)
    complete(db, "c1", "ch-0", result=1)
    pump(db, d)
    with caplog.at_level(logging.WARNING, logger="atmosphere.scheduler"):
        complete(db, "c1", "ch-1", ok=False)
        pump(db, d)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "chain ch (user1) failed at step 1 of 3 (b, job ch-1) and no caller will hear of it: "
        "JobFailed: boom"
    ]
    record = db.get(f"{R}/jobs/ch-1")
    assert record["state"] == "failed" and record["error"]["message"] == "boom"
    assert db.get(f"{R}/live/chains") is None and db.get(f"{R}/jobs/ch-2") is None


def _chain(reply_to: str | None, replied: bool = False) -> ChainState:
    steps = (ChainStep("a"), ChainStep("b"))
    return ChainState(id="ch", name="n", steps=steps, timeout=5, reply_to=reply_to, replied=replied)


@pytest.mark.parametrize(
    ("reply_to", "chain", "logged"),
    [
        ("m", None, None),  # an RPC: its caller gets the error
        (None, None, "job j (t) failed and no caller will hear of it: Oops: no"),
        (None, _chain("m"), None),  # the chain's caller gets it
        (None, _chain(None), "chain ch (n) failed at step 1 of 2"),
        (None, _chain("m", replied=True), "chain ch (n) failed at step 1 of 2"),  # after callback
    ],
)
def test_unheard_failure_speaks_only_when_no_caller_hears(
    reply_to: str | None, chain: ChainState | None, logged: str | None
) -> None:
    ref = {"id": "ch", "step": 1} if chain is not None else None
    spec = JobSpec.from_json({"id": "j", "type": "t", "reply_to": reply_to, "chain": ref}, "j")
    line = unheard_failure(spec, chain, {"kind": "JobFailed", "type": "Oops", "message": "no"})
    assert (line is None) == (logged is None)
    assert line is None or logged is None or line.startswith(logged)
