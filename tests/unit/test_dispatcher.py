"""Dispatcher logic on the in-memory database: feed records, check the resulting writes.

Assigning, settling, chains, retries, dead clouds, restarts and garbage.
"""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere.jobs import ChainStep, payload
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
    assert db.get(f"{R}/replies/m1/j2") == {"ok": True, "job": "j2", "result_json": "6"}


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
        seen.append(payload(job, "data"))
        assert job["name"] == "user1" and job["chain"] == {"id": "ch", "step": index}
        complete(db, "c1", f"ch-{index}", result=index * 10)
        pump(db, d)
        if t == "b":
            assert db.get(f"{R}/replies/m1/ch") == {"ok": True, "job": "ch-1", "result_json": "10"}
    assert seen[0] == {"own": "a"}
    assert seen[1] == {"own": "b", "a": 0}
    assert seen[4] == {"own": "e", "d": 30}
    assert payload(db.get(f"{R}/replies/m1/ch"), "result") == 10  # only one reply per chain
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
    assert payload(db.get(f"{R}/replies/m1/j1"), "result") == "one"
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


def test_an_assignment_is_parsed_neither_when_made_nor_when_the_stream_shows_it(
    db: MemoryDatabase, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox entry is taken as built, and its echo equals it (``assigned`` is our clock, not
    a server timestamp the server would fill in differently): no parse per job for either."""
    from atmosphere.scheduler import state

    register(db, "c1", "t", slots=2)
    d = make(db, clock)
    parses: list[tuple[str, ...]] = []
    parse_inbox = state._PARSERS["inbox"]

    def counted(key: tuple[str, ...], raw: Any) -> Any:
        parses.append(key)
        return parse_inbox(key, raw)

    monkeypatch.setitem(state._PARSERS, "inbox", counted)
    submit(db, "j1")
    pump(db, d)
    assert inbox(db, "c1")["j1"]["assigned"] == round(clock.wall() * 1000)
    assert not d.overlay and d.state.inbox["c1"]["j1"].assigned == clock.wall()
    assert parses == []


def test_a_step_that_changes_nothing_plans_no_assignment_round(
    db: MemoryDatabase, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own writes shown back change nothing: no loads worked out, no queue walked. Anything
    that frees a slot, queues a job or touches a cloud's record plans again."""
    register(db, "c1", "t", slots=1)
    for i in range(3):
        submit(db, f"j{i}")
    d = make(db, clock)
    assert set(inbox(db, "c1")) == {"j0"}
    rounds: list[int] = []
    loads = d.cloud_loads

    def counted() -> Any:
        rounds.append(1)
        return loads()

    monkeypatch.setattr(d, "cloud_loads", counted)
    d.sync(timeout=0)
    d.step(0)  # a barrier alone: nothing changed
    pump(db, d)
    assert rounds == [] and set(inbox(db, "c1")) == {"j0"}
    submit(db, "j3")  # a job queued: a round (the cloud is full, so nothing placed)
    pump(db, d)
    assert rounds == [1] and set(inbox(db, "c1")) == {"j0"}
    complete(db, "c1", "j0")  # a slot freed: a round, placing the next job
    pump(db, d)
    assert len(rounds) >= 2 and set(inbox(db, "c1")) == {"j1"}
    rounds.clear()
    clock.t += 0.5
    beat(db, clock, "c1")  # a heartbeat changes the cloud's record: a round
    pump(db, d)
    assert rounds and set(inbox(db, "c1")) == {"j1"}
