"""A queue that does not move says so (scheduler/watch.py): the short chaos run once stalled
60 s with every cloud closed by routing, and nothing in any log said why."""

from __future__ import annotations

import logging

import pytest

from atmosphere.jobs import JobSpec
from atmosphere.presence import CloudInfo
from atmosphere.scheduler.state import LiveState
from atmosphere.scheduler.watch import why_waiting
from atmosphere.testing import MemoryDatabase
from tests.unit.dispatcher_kit import Clock, beat, make, pump, register, submit


def _spec(job_id: str, deaths: int = 0) -> JobSpec:
    return JobSpec(id=job_id, type="t", name="n", deaths=deaths)


def _state(held: int, slots: int = 2, lent: int = 0, alone: bool = False) -> LiveState:
    state = LiveState()
    info = CloudInfo(id="c1", name="c1", types=frozenset({"t"}), slots=slots, lent=lent)
    inbox = {f"h{i}": _spec(f"h{i}", deaths=int(alone)).to_json() for i in range(held)}
    state.apply("put", "", {"clouds": {"c1": info.to_json()}, "inbox": {"c1": inbox}})
    return state


def test_a_job_waiting_while_a_cloud_has_room_is_an_error_that_lists_the_clouds() -> None:
    verdict = why_waiting(_state(held=1), _spec("j1"), 61.0)
    assert verdict is not None
    level, message = verdict
    assert level == logging.ERROR
    assert "job j1 (t) has waited 61 s" in message and "c1 (up, holds 1 of 2 slots" in message


def test_waiting_behind_full_clouds_or_as_a_copy_of_a_held_job_is_no_surprise() -> None:
    assert why_waiting(_state(held=2), _spec("j1"), 600.0) is None
    # A queued copy of a job a cloud holds waits for that one to settle (routing skips it)
    assert why_waiting(_state(held=1), _spec("h0"), 600.0) is None


def test_waiting_to_run_alone_or_for_a_type_nobody_runs_is_a_warning_saying_so() -> None:
    level, message = why_waiting(_state(held=1), _spec("j1", deaths=1), 61.0) or (0, "")
    assert level == logging.WARNING and "runs alone" in message
    level, message = why_waiting(LiveState(), _spec("j1"), 61.0) or (0, "")
    assert level == logging.WARNING and "no cloud is registered for type t" in message
    # A cloud running a job alone is closed, and the message says it
    level, message = why_waiting(_state(held=1, alone=True), _spec("j1", 1), 61.0) or (0, "")
    assert "closed: runs a job alone" in message


def test_the_dispatcher_logs_a_job_stuck_to_run_alone_once_per_interval(
    db: MemoryDatabase, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Given one cloud busy with a job that waits on a sub-job forever (lent: never emptied)
    register(db, "c1", "t", slots=1, lent=1)
    submit(db, "busy")
    submit(db, "other")
    d = make(db, clock)
    d.watch.after = 10.0
    submit(db, "alone", deaths=1)
    caplog.set_level(logging.WARNING, logger="atmosphere.scheduler.watch")
    for _ in range(50):  # 25 s of the dispatcher's clock, the cloud alive
        clock.t += 0.5
        beat(db, clock, "c1")
        pump(db, d)
        d._next_look()  # where the loop runs its components
    told = [r for r in caplog.records if r.name == "atmosphere.scheduler.watch"]
    # Then it is told at 10 s and 20 s of waiting, with why
    assert len(told) == 2, [r.getMessage() for r in told]
    assert "job alone (t)" in told[0].getMessage() and "runs alone" in told[0].getMessage()
