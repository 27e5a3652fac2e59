"""Dispatcher logic on the in-memory database: feed records, check the resulting writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import ChainState, ChainStep
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.scheduler.housekeeping import silent_clouds
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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[MemoryDatabase]:
    database = MemoryDatabase(clock=clock.wall)
    yield database
    database.close()


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


def test_assigns_fifo_to_the_least_loaded_idle_cloud_never_a_busy_one(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t", slots=2)
    register(db, "c2", "t", slots=1)
    for i in range(5):
        submit(db, f"j{i}")
    d = make(db, clock)
    assert set(inbox(db, "c1")) == {"j0", "j2"} or set(inbox(db, "c1")) == {"j0", "j1"}
    assert len(inbox(db, "c1")) == 2 and len(inbox(db, "c2")) == 1
    assert set(inbox(db, "c1")) | set(inbox(db, "c2")) == {"j0", "j1", "j2"}
    assert set(db.get(f"{R}/live/queue/t")) == {"j3", "j4"}
    entry = inbox(db, "c2")[next(iter(inbox(db, "c2")))]
    assert entry["epoch"] == 0 and entry["attempt"] == 1 and isinstance(entry["assigned"], int)
    record = db.get(f"{R}/jobs/j0")
    assert record["state"] == "assigned" and record["cloud"] in ("c1", "c2")
    # A finished job frees a slot: the next job in FIFO order goes there.
    complete(db, "c2", next(iter(inbox(db, "c2"))), result=1)
    pump(db, d)
    assert set(db.get(f"{R}/live/queue/t")) == {"j4"}
    assert db.get(f"{R}/live/outcomes") is None


def test_jobs_wait_for_a_cloud_of_their_type(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "other")
    submit(db, "j1")
    d = make(db, clock)
    assert db.get(f"{R}/live/queue/t/j1") is not None
    register(db, "c2", "t")
    pump(db, d)
    assert list(inbox(db, "c2")) == ["j1"]


def test_draining_cloud_gets_no_job(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t", state="draining")
    submit(db, "j1")
    make(db, clock)
    assert inbox(db, "c1") == {}


def test_lent_slot_lets_a_recursive_sub_job_in(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    submit(db, "parent")
    d = make(db, clock)
    submit(db, "child", parent="parent")
    pump(db, d)
    assert list(inbox(db, "c1")) == ["parent"]
    db.set(f"{R}/live/clouds/c1/lent", 1)
    pump(db, d)
    assert set(inbox(db, "c1")) == {"parent", "child"}


def test_retry_goes_to_delayed_then_back_on_time(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    submit(db, "j1", retries=2, retry_backoff=4, retry_backoff_max=100, reply_to="m1")
    d = make(db, clock)
    complete(db, "c1", "j1", ok=False, retry=True)
    pump(db, d)
    delayed = db.get(f"{R}/live/delayed/j1")
    assert delayed["attempt"] == 2
    assert delayed["eta"] == int((EPOCH_S + 3.0) * 1000)  # 4s base, attempt 1, jitter 0.5 -> 3s
    assert db.get(f"{R}/jobs/j1/state") == "retrying"
    assert db.get(f"{R}/replies") is None  # not final: no reply yet
    clock.t = 2.9
    beat(db, clock, "c1")
    pump(db, d)
    assert db.get(f"{R}/live/delayed/j1") is not None
    clock.t = 3.1
    pump(db, d)
    assert db.get(f"{R}/live/delayed/j1") is None
    assert inbox(db, "c1")["j1"]["attempt"] == 2
    assert d.counts["retried"] == 1


def test_final_failure_is_a_dead_letter_with_one_error_reply(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j1", retries=1, reply_to="m1", attempt=2)
    d = make(db, clock)
    complete(db, "c1", "j1", ok=False, retry=True)  # the cloud thought another attempt was due
    pump(db, d)
    record = db.get(f"{R}/jobs/j1")
    assert record["state"] == "failed" and record["error"]["message"] == "boom"
    assert db.get(f"{R}/replies/m1/j1")["ok"] is False
    assert db.get(f"{R}/live") is None or db.get(f"{R}/live/outcomes") is None
    assert d.counts["failed"] == 1


def test_success_reply_is_left_to_the_cloud_when_it_replied(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    complete(db, "c1", "j1", result=5, replied=True)
    pump(db, d)
    assert db.get(f"{R}/replies") is None
    submit(db, "j2", reply_to="m1")
    pump(db, d)
    complete(db, "c1", "j2", result=6)  # a cloud that did not reply: the dispatcher does
    pump(db, d)
    assert db.get(f"{R}/replies/m1/j2") == {"ok": True, "job": "j2", "result": 6}


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


def test_five_step_chain_cascades_data_and_replies_once_at_the_callback(
    db: MemoryDatabase, clock: Clock
) -> None:
    types = ["a", "b", "c", "d", "e"]
    register(db, "c1", *types)
    steps = [ChainStep(t, {"own": t}, callback=(t == "b")) for t in types]
    submit_chain(db, steps)
    d = make(db, clock)
    seen = []
    for index, t in enumerate(types):
        job = inbox(db, "c1")[f"ch-{index}"]
        seen.append(job["data"])
        assert job["name"] == "user1" and job["chain"] == {"id": "ch", "step": index}
        complete(db, "c1", f"ch-{index}", result=index * 10)
        pump(db, d)
        if t == "b":
            assert db.get(f"{R}/replies/m1/ch") == {"ok": True, "job": "ch-1", "result": 10}
    assert seen[0] == {"own": "a"}
    assert seen[1] == {"own": "b", "a": 0}
    assert seen[4] == {"own": "e", "d": 30}
    assert db.get(f"{R}/replies/m1/ch")["result"] == 10  # only one reply per chain
    assert db.get(f"{R}/live/chains") is None  # chain record deleted at the end


def test_error_mid_chain_stops_it_and_replies_at_once(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "a", "b", "c")
    submit_chain(db, [ChainStep("a"), ChainStep("b"), ChainStep("c")])
    d = make(db, clock)
    complete(db, "c1", "ch-0", result=1)
    pump(db, d)
    complete(db, "c1", "ch-1", ok=False)
    pump(db, d)
    assert db.get(f"{R}/replies/m1/ch")["ok"] is False
    assert db.get(f"{R}/live/chains") is None and db.get(f"{R}/live/queue") is None
    assert db.get(f"{R}/jobs/ch-2") is None


def test_dead_cloud_jobs_are_requeued_with_the_same_id(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    register(db, "c2", "t")
    submit(db, "j1")
    submit(db, "j2")
    d = make(db, clock)
    assert list(inbox(db, "c1")) == ["j1"] and list(inbox(db, "c2")) == ["j2"]
    for step in range(1, 10):  # c2 keeps beating, c1 is silent
        clock.t = step * 0.5
        beat(db, clock, "c2")
        pump(db, d)
    assert db.get(f"{R}/live/clouds/c1") is None and inbox(db, "c1") == {}
    assert list(db.get(f"{R}/live/queue/t")) == ["j1"]  # same id, waiting for a free cloud
    assert db.get(f"{R}/jobs/j1/state") == "queued"
    complete(db, "c2", "j2", result=2)
    pump(db, d)
    assert list(inbox(db, "c2")) == ["j1"]
    assert d.counts["dead_clouds"] == 1


def test_an_orphan_inbox_without_a_cloud_record_is_requeued(
    db: MemoryDatabase, clock: Clock
) -> None:
    db.set(f"{R}/live/inbox/gone/j1", {"id": "j1", "type": "t", "name": "n"})
    d = make(db, clock)
    clock.t = 3.5
    pump(db, d)
    assert db.get(f"{R}/live/inbox") is None
    assert list(db.get(f"{R}/live/queue/t")) == ["j1"]


def test_a_late_duplicate_outcome_is_recorded_not_acted_on(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    complete(db, "c1", "j1", result=1)
    pump(db, d)
    db.set(
        f"{R}/live/outcomes/j1",
        {"cloud": "c9", "attempt": 1, "ok": False, "error": {"message": "x"}},
    )
    pump(db, d)
    assert db.get(f"{R}/live/outcomes") is None
    assert "c9-1" in db.get(f"{R}/jobs/j1/late")
    assert db.get(f"{R}/replies/m1/j1")["ok"] is True
    assert d.counts["late"] == 1


def test_delayed_jobs_from_makers_are_queued_on_time(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t")
    eta = int((EPOCH_S + 10) * 1000)
    db.set(f"{R}/live/delayed/j1", {"id": "j1", "type": "t", "name": "n", "eta": eta})
    d = make(db, clock)
    for t in range(1, 10):
        clock.t = t
        beat(db, clock, "c1")
        pump(db, d)
    assert inbox(db, "c1") == {}
    clock.t = 10.0
    pump(db, d)
    assert "eta" not in inbox(db, "c1")["j1"]


def test_restart_rebuilds_everything_from_the_snapshot(db: MemoryDatabase, clock: Clock) -> None:
    register(db, "c1", "t", slots=2)
    submit(db, "j1", reply_to="m1")
    submit(db, "j2", reply_to="m1")
    d = make(db, clock)
    d.stop()
    complete(db, "c1", "j1", result="one")  # finishes while no dispatcher runs
    submit(db, "j3", reply_to="m1")
    d2 = make(db, clock)
    assert db.get(f"{R}/live/outcomes") is None
    assert db.get(f"{R}/replies/m1/j1")["result"] == "one"
    assert set(inbox(db, "c1")) == {"j2", "j3"}
    assert d2.counts["succeeded"] == 1


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("live", "garbage"),
        ("live/queue", [1, 2, 3]),
        ("live/queue/t", "x"),
        ("live/queue/t/bad", {"no": "type"}),
        ("live/clouds/cx", 42),
        ("live/inbox/c1/zz", True),
        ("live/outcomes/zz", {"ok": "maybe"}),
        ("live/outcomes/ghost", {"ok": True, "cloud": "c1", "attempt": 1}),
        ("live/chains/bad", {"steps": "no"}),
        ("live/delayed/bad", {"eta": "soon"}),
        ("live/whatever", {"a": 1}),
        ("jobs", "not records"),
    ],
)
def test_garbage_never_stops_the_dispatcher(
    db: MemoryDatabase, clock: Clock, path: str, value: Any
) -> None:
    register(db, "c1", "t", slots=5)
    d = make(db, clock)
    db.set(f"{R}/{path}", value)
    pump(db, d)
    register(db, "c1", "t", slots=5)
    submit(db, "good")
    pump(db, d)
    assert "good" in inbox(db, "c1")


def test_a_failed_write_suspends_decisions_until_a_fresh_snapshot(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "t")
    d = make(db, clock)
    with db.disconnected():
        db.fail_writes = False
        submit(db, "j1")  # written while the stream is down
        db.fail_writes = True
    db.reconnect()
    pump(db, d)
    assert "j1" in inbox(db, "c1")
    db.fail_writes = True
    submit_raw = {"id": "j2", "type": "t", "name": "n"}
    db.fail_writes = False
    complete(db, "c1", "j1", result=1)
    db.update(R, {"live/queue/t/j2": submit_raw})
    db.fail_writes = True
    db.drain()
    d.step(0)  # its batch fails: the dispatcher stops deciding
    assert d._suspended
    db.fail_writes = False
    clock.t = 1.0
    pump(db, d)
    assert not d._suspended
    assert "j2" in inbox(db, "c1") and db.get(f"{R}/live/outcomes") is None


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
    assert db.get(f"{R}/live/dispatchers/d1")["leader"] is True


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
    d._inbox.put(("event", "put", "/", before))  # no stream: events are fed by hand
    d.step(0)
    assert d.counts["assigned"] == 1 and d.overlay
    d._inbox.put(("event", "put", "/", before))  # committed before our update, delivered after
    d.step(0)
    assert d.counts["assigned"] == 1
    assert d.state.locate("j1") == "inbox"
    d._inbox.put(("event", "put", "/", db.get(f"{R}/live")))  # the echo, with our marker
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
    assert inbox(db, "c1")["ch-1"]["data"] == {"x": 1, "a": "A"}


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
    lead = Toggle()
    register(db, "c1", "t")
    d = make(db, clock, leadership=lead)
    submit(db, "j1")
    db.drain()
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
