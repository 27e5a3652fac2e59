"""Dispatcher logic on the in-memory database: feed records, check the resulting writes.

Stats, retention, leadership, held bookkeeping and duplicate copies.
"""

from __future__ import annotations

from typing import Any

from atmosphere.jobs import ChainStep, payload
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.scheduler.housekeeping import silent_clouds
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from tests.unit.dispatcher_kit import (
    EPOCH_S,
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


def test_stats_are_counted_per_minute_and_type(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    submit(db, "j1")
    d = make(db, clock)
    complete(db, "c1", "j1", result=1)
    pump(db, d)
    clock.t = 2.5
    pump(db, d)
    stats = db.get(f"{R}/stats")
    (minute,) = stats
    assert stats[minute]["t"]["succeeded"] == 1
    assert stats[minute]["t"]["submitted"] == 1
    assert sum(stats[minute]["t"]["latency"].values()) == 1
    assert db.get(f"{R}/live/dispatchers/d1")["role"] == "leader"


def test_gc_deletes_old_finished_jobs_and_their_replies(db: MemoryDatabase, clock: Clock) -> None:
    now_ms = int(EPOCH_S * 1000)
    old = now_ms - 7200_000
    db.update(
        R,
        {
            "jobs/old": {
                "id": "old",
                "type": "t",
                "state": "succeeded",
                "finished": old,
                "reply_to": "m1",
            },
            "replies/m1/old": {"ok": True, "job": "old"},
            "jobs/step": {
                "id": "ch-1",
                "type": "t",
                "state": "succeeded",
                "finished": old,
                "chain": {"id": "ch", "step": 1},
                "chain_reply_to": "m2",
            },
            "replies/m2/ch": {"ok": True, "job": "ch-1"},
            "jobs/fresh": {"id": "fresh", "type": "t", "state": "succeeded", "finished": now_ms},
            "jobs/waiting": {"id": "waiting", "type": "t", "state": "queued"},
            "stats/200001010000/t": {"succeeded": 1},
        },
    )
    d = make(db, clock)
    clock.t = 5.0
    pump(db, d)
    assert set(db.get(f"{R}/jobs")) == {"fresh", "waiting"}
    assert db.get(f"{R}/replies") is None
    assert db.get(f"{R}/stats/200001010000") is None
    assert d.counts["collected"] == 2


def test_a_stale_snapshot_arriving_after_our_write_does_not_cause_a_second_assignment(
    db: MemoryDatabase, clock: Clock
) -> None:
    """The embedded server sends whole-value puts; one from before our update must not undo it."""
    settings = Settings(dead_after=3.0, heartbeat_interval=1.0)
    d = Dispatcher(
        db, settings, dispatcher_id="d1", wall=clock.wall, monotonic=clock.mono, window=0.0
    )
    register(db, "c1", "t")
    register(db, "c2", "t")
    submit(db, "j1")
    before = db.get(f"{R}/live")
    d.intake.on_event("put", "/", before)  # no stream: events are fed by hand
    d.step(0)
    assert d.counts["assigned"] == 1 and d.overlay
    d.intake.on_event("put", "/", before)  # committed before our update, delivered after
    d.step(0)
    assert d.counts["assigned"] == 1
    assert d.state.locate("j1") == "inbox"
    d.intake.on_event("put", "/", db.get(f"{R}/live"))  # the echo, with our marker
    d.step(0)
    assert not d.overlay
    assert d.counts["assigned"] == 1


def test_an_operator_requeue_of_a_dead_letter_runs_and_settles_again(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    complete(db, "c1", "j1", ok=False)
    pump(db, d)
    assert db.get(f"{R}/jobs/j1/state") == "failed"
    spec = {"id": "j1", "type": "t", "name": "n", "reply_to": "m1"}  # what the station writes
    db.update(R, {"jobs/j1/state": "queued", "live/queue/t/j1": spec})
    pump(db, d)
    complete(db, "c1", "j1", result="second time lucky")
    pump(db, d)
    assert d.counts.get("late") is None
    assert d.counts["succeeded"] == 1


def test_a_chain_step_finished_while_no_dispatcher_ran_still_progresses(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "a", "b")
    submit_chain(db, [ChainStep("a"), ChainStep("b", {"x": 1})])
    d = make(db, clock)
    d.stop()
    complete(db, "c1", "ch-0", result="A")
    make(db, clock)
    assert payload(inbox(db, "c1")["ch-1"], "data") == {"x": 1, "a": "A"}


def test_silent_clouds_are_judged_on_our_own_clock() -> None:
    seen = {"a": 0.0, "b": 5.0}
    assert silent_clouds({"a", "b", "new"}, seen, 7.0, 6.0) == ["a"]
    assert seen["new"] == 7.0  # a cloud first seen now gets a full dead_after
    assert silent_clouds({"b"}, seen, 11.0, 6.0) == []


class Toggle:
    """A Leadership whose answer the test flips."""

    def __init__(self) -> None:
        self.leader = True
        self.epoch = 7

    def is_leader(self) -> bool:
        return self.leader


def _leading_with_a_job(db: MemoryDatabase, clock: Clock) -> tuple[Toggle, Dispatcher]:
    """A leader, a cloud c1 for type t and job j1 queued, its event not handled yet."""
    lead = Toggle()
    register(db, "c1", "t")
    d = make(db, clock, leadership=lead)
    submit(db, "j1")
    db.drain()
    return lead, d


def test_assignments_carry_the_epoch_and_a_standby_writes_nothing(
    db: MemoryDatabase, clock: Clock
) -> None:
    lead = Toggle()
    register(db, "c1", "t")
    submit(db, "j1")
    d = make(db, clock, leadership=lead)
    assert inbox(db, "c1")["j1"]["epoch"] == 7
    lead.leader = False
    writes = db.writes
    submit(db, "j2")
    complete(db, "c1", "j1", result=1)
    pump(db, d)
    assert db.writes == writes + 2  # only the test's own two writes
    assert db.get(f"{R}/live/queue/t/j2") is not None
    lead.leader, lead.epoch = True, 8
    pump(db, d)
    assert inbox(db, "c1")["j2"]["epoch"] == 8
    assert db.get(f"{R}/live/outcomes") is None


def test_a_leader_deposed_before_its_flush_drops_the_batch_and_resyncs(
    db: MemoryDatabase, clock: Clock
) -> None:
    lead, d = _leading_with_a_job(db, clock)
    real = d._assign

    def assign_then_lose_the_lease() -> None:
        real()
        lead.leader = False

    d._assign = assign_then_lose_the_lease  # type: ignore[method-assign]
    d.step(0)
    assert inbox(db, "c1") == {}  # nothing written after losing the lease
    d._assign = real  # type: ignore[method-assign]
    lead.leader = True
    pump(db, d)
    assert "j1" in inbox(db, "c1")
    assert d.counts["assigned"] == 2  # decided twice, written once


def test_no_cloud_is_judged_dead_while_the_stream_is_down(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    d = make(db, clock)
    db.disconnect()
    clock.t = 10.0
    pump(db, d)
    assert db.get(f"{R}/live/clouds/c1") is not None
    db.reconnect()
    pump(db, d)
    clock.t = 12.0
    pump(db, d)
    assert db.get(f"{R}/live/clouds/c1") is not None  # a fresh count started at reconnection
    clock.t = 13.5
    pump(db, d)
    assert db.get(f"{R}/live/clouds/c1") is None


def test_a_standby_that_takes_over_releases_delayed_jobs_that_came_due(
    db: MemoryDatabase, clock: Clock
) -> None:
    lead = Toggle()
    lead.leader = False
    register(db, "c1", "t")
    eta = int((EPOCH_S + 2) * 1000)
    db.set(f"{R}/live/delayed/j1", {"id": "j1", "type": "t", "name": "n", "eta": eta})
    d = make(db, clock, leadership=lead)
    clock.t = 2.5
    beat(db, clock, "c1")
    pump(db, d)
    assert db.get(f"{R}/live/delayed/j1") is not None  # a standby moves nothing
    lead.leader = True
    pump(db, d)
    assert db.get(f"{R}/live/delayed") is None and "j1" in inbox(db, "c1")


def test_bookkeeping_waits_to_ride_along_but_work_goes_out_at_once(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a dispatcher that holds bookkeeping-only batches for 50 ms
    register(db, "c1", "t")
    submit(db, "j0")
    d = make(db, clock, settle_delay=0.05)
    assert set(inbox(db, "c1")) == {"j0"}  # work is written at once
    # When the job succeeds, the settle (outcome deletion, record) is held back ...
    complete(db, "c1", "j0", result=1)
    pump(db, d)
    assert db.get(f"{R}/live/outcomes/j0") is not None
    # ... and rides along with the next piece of work, in the same update
    updates = db.writes
    submit(db, "j1")
    pump(db, d)
    assert set(inbox(db, "c1")) == {"j1"}
    assert db.get(f"{R}/live/outcomes/j0") is None
    assert db.writes == updates + 2  # the submission, then one update for assign + settle
    # With nothing else to carry it, held bookkeeping goes out once the delay has passed
    complete(db, "c1", "j1", result=2)
    pump(db, d)
    assert db.get(f"{R}/live/outcomes/j1") is not None
    clock.t += 0.06
    pump(db, d)
    assert db.get(f"{R}/live/outcomes/j1") is None
    assert db.get(f"{R}/jobs/j1/state") == "succeeded"


def test_held_bookkeeping_survives_a_fresh_snapshot_without_a_false_late_outcome(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a settle held back (the outcome's deletion is not written yet)
    register(db, "c1", "t")
    submit(db, "j0")
    d = make(db, clock, settle_delay=0.05)
    complete(db, "c1", "j0", result=1)
    pump(db, d)
    assert db.get(f"{R}/live/outcomes/j0") is not None
    # When the stream resyncs with a snapshot taken before the deletion was written
    db.disconnect()
    db.reconnect()
    pump(db, d)
    clock.t += 0.06
    pump(db, d)
    # Then the outcome is settled once, not taken for a late duplicate of itself
    assert db.get(f"{R}/live/outcomes/j0") is None
    assert db.get(f"{R}/jobs/j0/late") is None
    assert d.counts.get("late", 0) == 0 and d.counts["succeeded"] == 1


def test_a_deposed_dispatcher_does_not_write_held_bookkeeping_on_its_way_out(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a held settle when the dispatcher loses its leadership, then stops
    lead = Toggle()
    register(db, "c1", "t")
    submit(db, "j0")
    d = make(db, clock, settle_delay=0.05, leadership=lead)
    complete(db, "c1", "j0", result=1)
    pump(db, d)
    lead.leader = False
    d.stop()
    d._farewell()
    # Then its stale writes stay unwritten: the new leader settles (a new attempt's outcome
    # may sit at the same path by then)
    assert db.get(f"{R}/live/outcomes/j0") is not None
    assert db.get(f"{R}/live/dispatchers/d1") is None


def test_a_queued_copy_of_a_job_some_cloud_holds_is_not_assigned_again(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given j0 running on c1, and a second cloud free
    register(db, "c1", "t")
    register(db, "c2", "t")
    submit(db, "j0")
    d = make(db, clock)
    holder = "c1" if "j0" in inbox(db, "c1") else "c2"
    other = "c2" if holder == "c1" else "c1"
    # When a copy of j0 lands in the queue meanwhile (two operators retrying it, a late hand-back)
    db.set(f"{R}/live/queue/t/j0", {"id": "j0", "type": "t", "name": "n", "timeout": 30})
    pump(db, d)
    # Then it is not run a second time: it waits, and goes once the held copy settles
    assert inbox(db, other) == {}
    complete(db, holder, "j0", result=1)
    pump(db, d)
    assert db.get(f"{R}/live/queue") is None and inbox(db, other) == {}
    assert d.counts["assigned"] == 1 and d.counts["succeeded"] == 1


def test_a_queued_copy_goes_when_the_held_copy_is_retried_later(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j0", retries=2, retry_backoff=10)
    d = make(db, clock)
    db.set(f"{R}/live/queue/t/j0", {"id": "j0", "type": "t", "name": "n", "timeout": 30})
    pump(db, d)
    # When the held copy fails and its retry waits in live/delayed
    complete(db, "c1", "j0", ok=False, retry=True)
    pump(db, d)
    # Then the queued copy is dropped: the job runs once per attempt, from delayed
    assert db.get(f"{R}/live/delayed/j0") is not None
    assert db.get(f"{R}/live/queue") is None and inbox(db, "c1") == {}


def test_gc_does_not_spin_on_old_records_of_jobs_that_go_on(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a full batch of old records that are not finished (written before retries cleared
    # ``finished``): nothing to delete there
    old = int(EPOCH_S * 1000) - 7200_000
    db.update(
        R,
        {
            f"jobs/r{i}": {"id": f"r{i}", "type": "t", "state": "retrying", "finished": old}
            for i in range(3)
        },
    )
    d = make(db, clock, gc_batch=2, gc_interval=60.0)
    queries = []
    real_query = db.query

    def counting_query(*args: Any, **kwargs: Any) -> Any:
        queries.append(args[0])
        return real_query(*args, **kwargs)

    db.query = counting_query  # type: ignore[method-assign]
    for t in (5.0, 6.5, 8.0, 9.5):
        clock.t = t
        pump(db, d)
    # Then they are neither counted as collected nor re-read every second
    assert d.counts.get("collected", 0) == 0
    assert sum(1 for q in queries if q.endswith("/jobs")) == 1
    assert len(db.get(f"{R}/jobs")) == 3


def test_late_outcomes_read_from_records_leave_no_spec_behind(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a restarted dispatcher and stale outcomes of jobs whose record says attempt 2
    for i in range(3):
        job = {"id": f"j{i}", "type": "t", "name": "n", "timeout": 30, "attempt": 2}
        stale = {"cloud": "c1", "attempt": 1, "ok": True, "finished": 1}
        db.update(R, {f"jobs/j{i}": {**job, "state": "assigned"}, f"live/outcomes/j{i}": stale})
    d = make(db, clock)
    # Then each is recorded as late, and the specs read to judge them are not kept forever
    assert d.counts["late"] == 3 and db.get(f"{R}/live/outcomes") is None
    assert d.settler.specs == {}


def _deposed_while_its_job_finishes(db: MemoryDatabase, lead: Toggle) -> None:
    """The leader is deposed, the new leader removes its record as silent (marker and all), and
    the job it assigned completes and is settled."""
    lead.leader = False
    db.delete(f"{R}/live/dispatchers/d1")
    complete(db, "c1", "j1", result=1)
    db.delete(f"{R}/live/outcomes/j1")


def _back_as_leader_with_a_silent_cloud(
    db: MemoryDatabase, d: Dispatcher, lead: Toggle, clock: Clock
) -> None:
    lead.leader, lead.epoch = True, 9
    for t in (1.0, 2.0, 3.5, 5.0):
        clock.t = t
        pump(db, d)


def test_a_leader_frozen_after_assigning_does_not_requeue_the_finished_job_when_back(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a leader frozen right after flushing an assignment: its write (and marker) is in,
    # but the stream's echo waits, unprocessed
    lead, d = _leading_with_a_job(db, clock)
    d.step(0)
    assert "j1" in inbox(db, "c1")
    # While it is frozen it is deposed and the job finishes
    _deposed_while_its_job_finishes(db, lead)
    pump(db, d)  # thawed: all of it arrives in one step
    # When it leads again and the cloud falls silent
    _back_as_leader_with_a_silent_cloud(db, d, lead, clock)
    # Then the finished job is not requeued from a stale view (the chaos run's double execution)
    assert db.get(f"{R}/live/clouds/c1") is None
    assert db.get(f"{R}/live/queue/t/j1") is None


def test_a_leader_cut_off_after_assigning_does_not_requeue_the_finished_job_when_back(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a leader whose stream drops right as it flushes an assignment: the write (and its
    # marker) is in, but no echo of it ever arrives
    lead, d = _leading_with_a_job(db, clock)
    db.disconnect()
    db.drain()
    d.step(0)
    assert "j1" in inbox(db, "c1")
    # While it is cut off it is deposed and the job finishes; then the stream comes back with
    # one snapshot showing no marker at all (nothing tells the assignment was in, then undone)
    _deposed_while_its_job_finishes(db, lead)
    db.reconnect()
    pump(db, d)
    # When it leads again (a new epoch) and the cloud falls silent
    _back_as_leader_with_a_silent_cloud(db, d, lead, clock)
    # Then the finished job is not requeued from a stale view
    assert db.get(f"{R}/live/clouds/c1") is None
    assert db.get(f"{R}/live/queue/t/j1") is None
    assert db.get(f"{R}/jobs/j1/state") == "succeeded"
    assert d.counts["overlay_dropped"] == 1


def test_the_presence_record_rewritten_whole_keeps_the_write_marker(
    db: MemoryDatabase, clock: Clock
) -> None:
    # Given a dispatcher that keeps its own presence record (no election) and has assigned a job
    register(db, "c1", "t")
    d = make(db, clock)
    submit(db, "j1")
    pump(db, d)
    assert "j1" in inbox(db, "c1")
    first = db.get(f"{R}/live/dispatchers/d1/seq")
    # When the stats timer rewrites its whole record (a set of live/dispatchers/d1, seq not in it)
    clock.t = 2.5
    pump(db, d)
    record = db.get(f"{R}/live/dispatchers/d1")
    # Then the marker rides in the same update, folded into the record: never wiped, and every
    # batch, the record's own included, is confirmed
    assert record["role"] == "leader" and record["heartbeat"] == int((EPOCH_S + 2.5) * 1000)
    assert record["seq"] == f"{d.overlay.run}:2" and first == f"{d.overlay.run}:1"
    assert not d.overlay
