"""The cloud runtime on MemoryDatabase, with a fake assign step standing in for the dispatcher."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from atmosphere import LATER, Atmosphere, JobFailed, Retry, Ticket, UnknownTaskType
from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import JobSpec, Outcome, payload
from atmosphere.presence import CloudInfo
from atmosphere.settings import Settings
from atmosphere.worker.cloud import Cloud, LoadAverage, record_json
from atmosphere.worker.inbox import inbox_changes
from tests.support import wait_until
from tests.unit.jobs_fakes import QUIET, FakeDispatcher, RecordingDatabase, assign

ROOT = "atmosphere"


class World:
    """An app with tasks, a running cloud and a fake dispatcher on one RecordingDatabase."""

    def __init__(self, settings: Settings = QUIET, slots: int = 1) -> None:
        self.db = RecordingDatabase()
        self.app = Atmosphere("t", settings=settings, database=self.db)
        self.release = threading.Event()
        self.started = threading.Event()
        _register_tasks(self)
        # Every completion carries the record, so the counters can be read right after it.
        self.cloud = Cloud(self.app, name="c1", concurrency=slots, grace=5.0, record_every=0.0)
        self.cloud.start()
        self.dispatcher = FakeDispatcher(self.db, self.app.paths)

    def get(self, path: str) -> Any:
        return self.db.get(f"{ROOT}/{path}")

    def replace_cloud(self, **options: Any) -> Cloud:
        """Stop the world's cloud and start one with ``options`` (name, prefetch, patience...)."""
        self.cloud.stop(grace=1.0)
        self.cloud = Cloud(self.app, **{"record_every": 0.0, **options})
        self.cloud.start()
        return self.cloud

    def close(self) -> None:
        self.release.set()
        self.cloud.stop(grace=2.0)
        self.dispatcher.close()
        self.app.close()
        self.db.close()


def _register_tasks(world: World) -> None:
    app = world.app

    @app.task("echo")
    def echo(ticket: Ticket, data: Any) -> Any:
        return {"ticket": dict(ticket), "data": data}

    @app.task("boom")
    def boom(ticket: Ticket, data: Any) -> Any:
        raise ValueError(f"boom {data}")

    @app.task("nonjson")
    def nonjson(ticket: Ticket, data: Any) -> Any:
        return {"when": object()}

    @app.task("later")
    def later(ticket: Ticket, data: Any) -> Any:
        threading.Timer(0.05, app.done_with, (ticket, None, f"later {data}")).start()
        return LATER

    @app.task("original")
    def original(ticket: Ticket, data: Any) -> Any:
        app.done_with(ticket, None, f"done {data['msg']}")  # and returns None, as in 2013

    @app.task("flaky", retries=1)
    def flaky(ticket: Ticket, data: Any) -> Any:
        raise Retry(delay=2.5, message="busy")

    @app.task("slow")
    def slow(ticket: Ticket, data: Any) -> Any:
        world.started.set()
        world.release.wait(10)
        return data

    @app.task("whose")
    def whose(ticket: Ticket, data: Any) -> Any:
        return threading.get_ident()

    @app.task("stuck")
    def stuck(ticket: Ticket, data: Any) -> Any:
        """Fails once released, as a handler waiting on a sub-job does when its app closes."""
        world.started.set()
        world.release.wait(10)
        raise RuntimeError("the app closed under me")

    _register_recursive_tasks(app)


def _register_recursive_tasks(app: Atmosphere) -> None:
    @app.task("fib")
    def fib(ticket: Ticket, data: Any) -> Any:
        depth = int(data)
        if depth == 0:
            return 0
        return 1 + app.tasks[f"fib{depth - 1}" if depth > 1 else "fib0"].delay(depth - 1).get()

    @app.task("fib2")
    def fib2(ticket: Ticket, data: Any) -> Any:
        return fib(ticket, data)

    @app.task("fib1")
    def fib1(ticket: Ticket, data: Any) -> Any:
        return fib(ticket, data)

    @app.task("fib0")
    def fib0(ticket: Ticket, data: Any) -> Any:
        return 0

    @app.task("callbacks")
    def callbacks(ticket: Ticket, data: Any) -> Any:
        """The original recursion style: a sub-job with a callback that calls done_with."""

        def on_inner(error: Any, result: Any) -> None:
            app.done_with(ticket, error, {"inner": result})

        app.tasks["fib0"].submit(data=0, callback=on_inner)
        return LATER


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_rpc_and_the_completion_is_one_update_with_the_protocol_paths(world: World) -> None:
    handle = world.app.tasks["echo"].submit(name="n1", data={"a": 1})
    result = handle.get(timeout=5)
    assert result == {"ticket": {"type": "echo", "name": "n1", "id": handle.id}, "data": {"a": 1}}
    cid, jid = world.cloud.id, handle.id
    completion = [v for _, v in world.db.updates if f"live/outcomes/{jid}" in v]
    assert len(completion) == 1
    assert set(completion[0]) == {
        f"live/inbox/{cid}/{jid}",
        f"live/outcomes/{jid}",
        f"jobs/{jid}/state",
        f"jobs/{jid}/result_json",
        f"jobs/{jid}/started",
        f"jobs/{jid}/finished",
        f"jobs/{jid}/cloud",
        f"replies/{world.app.maker.id}/{jid}",
        f"live/clouds/{cid}",
    }
    record = world.get(f"jobs/{jid}")
    assert record["state"] == "succeeded" and record["cloud"] == cid
    assert payload(record, "result") == result and record["finished"] >= record["started"]
    outcome = Outcome.from_json(world.get(f"live/outcomes/{jid}"), jid)
    assert outcome.ok and outcome.replied and outcome.attempt == 1 and outcome.final
    assert world.get(f"live/inbox/{cid}") is None
    info = CloudInfo.from_json(world.get(f"live/clouds/{cid}"), cid)
    assert (info.done, info.failed, info.running, info.types) == (
        1,
        0,
        0,
        frozenset(world.app.tasks),
    )


def test_a_handler_that_raises_fails_the_job_with_the_traceback(world: World) -> None:
    handle = world.app.tasks["boom"].delay(7)
    with pytest.raises(JobFailed, match="boom 7") as info:
        handle.get(timeout=5)
    assert info.value.error_type == "ValueError"
    assert info.value.remote_traceback and "raise ValueError" in info.value.remote_traceback
    assert world.get(f"jobs/{handle.id}/state") == "failed"
    assert world.get(f"jobs/{handle.id}/error/message") == "boom 7"
    assert world.get(f"live/clouds/{world.cloud.id}/failed") == 1


def test_a_non_json_result_fails_cleanly_and_the_cloud_goes_on(world: World) -> None:
    with pytest.raises(JobFailed, match="not JSON-serialisable"):
        world.app.tasks["nonjson"].delay(1).get(timeout=5)
    assert world.app.tasks["echo"].delay(2).get(timeout=5)["data"] == 2


def test_an_assignment_for_an_unknown_type_fails_with_unknown_task_type(world: World) -> None:
    handle = world.app.submit({"type": "ghost", "data": 1}, lambda e, d: None)
    assert world.app.maker.flush(5)  # submit() returns before the outbox writes
    entry = world.get(f"live/queue/ghost/{handle.id}")
    assign(world.db, world.app.paths, world.cloud.id, handle.id, entry)
    with pytest.raises(UnknownTaskType, match="no task for type 'ghost'"):
        handle.get(timeout=5)


def test_a_garbage_assignment_is_removed_and_the_cloud_survives(world: World) -> None:
    inbox = f"live/inbox/{world.cloud.id}"
    world.db.update(ROOT, {f"{inbox}/junk1": "not a job", f"{inbox}/junk2": {"type": 5}})
    wait_until(lambda: world.get(inbox) is None, 5, what="garbage removed")
    assert world.app.tasks["echo"].delay(3).get(timeout=5)["data"] == 3


def test_done_with_from_another_thread(world: World) -> None:
    assert world.app.tasks["later"].delay("x").get(timeout=5) == "later x"


def test_done_with_inside_the_handler_original_style(world: World) -> None:
    handle = world.app.submit({"type": "original", "data": {"msg": "hi"}}, lambda e, d: None)
    assert handle.get(timeout=5) == "done hi"


def test_done_with_for_a_job_not_running_here_returns_false(world: World) -> None:
    assert world.app.done_with(Ticket(type="x", name="y", id="nope"), None, 1) is False


def test_retry_writes_a_retry_outcome_and_no_reply(world: World) -> None:
    handle = world.app.tasks["flaky"].delay(1)
    jid = handle.id
    wait_until(lambda: world.get(f"live/outcomes/{jid}"), 5, what="outcome")
    outcome = Outcome.from_json(world.get(f"live/outcomes/{jid}"), jid)
    assert (outcome.ok, outcome.final, outcome.retry_delay, outcome.replied) == (
        False,
        False,
        2.5,
        False,
    )
    assert world.get(f"jobs/{jid}/state") == "retrying"
    assert world.get(f"replies/{world.app.maker.id}/{jid}") is None
    assert not handle.done()


def test_the_last_attempt_fails_for_good_and_replies(world: World) -> None:
    handle = world.app.tasks["flaky"].delay(1)
    wait_until(lambda: world.get(f"live/outcomes/{handle.id}"), 5, what="first outcome")
    world.db.delete(f"{ROOT}/live/outcomes/{handle.id}")  # what the dispatcher's settle does
    spec = JobSpec.from_json(world.get(f"jobs/{handle.id}"), handle.id).evolve(attempt=2)
    entry = {k: v for k, v in spec.to_json().items() if k != "state"}
    assign(world.db, world.app.paths, world.cloud.id, handle.id, entry)
    with pytest.raises(JobFailed, match="no attempt is left"):
        handle.get(timeout=5)
    assert world.get(f"jobs/{handle.id}/state") == "failed"


def test_chain_steps_get_no_reply_from_the_cloud(world: World) -> None:
    handle = world.app.submit([{"type": "echo", "data": 1}, {"type": "echo"}], lambda e, d: None)
    step = f"{handle.id}-0"
    wait_until(lambda: world.get(f"live/outcomes/{step}"), 5, what="step outcome")
    assert world.get(f"replies/{world.app.maker.id}") is None
    assert payload(world.get(f"jobs/{step}"), "result")["data"] == 1


def test_recursion_three_deep_on_one_exclusive_cloud_lends_its_slot(world: World) -> None:
    assert world.cloud.slots == 1
    assert world.app.tasks["fib2"].delay(2).get(timeout=10) == 2
    assert world.app.tasks["fib"].delay(3).get(timeout=10) == 3  # fib -> fib2 -> fib1 -> fib0
    assert world.dispatcher.max_lent >= 2
    assert world.cloud.lent == 0
    wait_until(lambda: world.get(f"live/clouds/{world.cloud.id}/lent") is None, 5)


def test_original_style_recursion_with_callbacks_lends_the_slot_too(world: World) -> None:
    assert world.cloud.slots == 1
    assert world.app.tasks["callbacks"].delay(None).get(timeout=10) == {"inner": 0}
    assert world.dispatcher.max_lent >= 1 and world.cloud.lent == 0


def test_an_exclusive_cloud_runs_one_job_at_a_time(world: World) -> None:
    first = world.app.tasks["slow"].delay(1)
    assert world.started.wait(5)
    second = world.app.tasks["echo"].delay(2)
    world.app.maker.flush(5)
    world.dispatcher.pump()  # (not db.drain(): the cloud's stream thread runs the slow job)
    assert world.get(f"live/queue/echo/{second.id}") is not None
    assert world.cloud.running == 1 and not second.done()
    world.release.set()
    assert first.get(timeout=5) == 1 and second.get(timeout=5)["data"] == 2


def test_assignments_made_while_disconnected_arrive_on_resync(world: World) -> None:
    world.db.disconnect()
    handle = world.app.tasks["echo"].delay(4)
    world.dispatcher.pump()
    world.db.reconnect()
    assert handle.get(timeout=5)["data"] == 4


def test_stop_hands_back_unstarted_jobs_finishes_running_ones_and_deregisters() -> None:
    world = World()
    # Prefetching, so the second job waits locally (a default cloud's stream thread runs the
    # slow job and reads nothing meanwhile: see the test after this one).
    world.replace_cloud(name="c1", prefetch=1, grace=5.0)
    cid = world.cloud.id
    running = world.app.tasks["slow"].delay("r")
    assert world.started.wait(5)
    # The second job is placed by hand, the fake dispatcher closed first: it counts the
    # prefetch slot as room, and placing the job itself meanwhile raced the test's own move.
    world.dispatcher.close()
    waiting = world.app.tasks["echo"].submit(name="w", data="w")
    world.app.maker.flush()  # submit() returns before the outbox writes
    entry = world.get(f"live/queue/echo/{waiting.id}")
    assert entry is not None
    assign(world.db, world.app.paths, cid, waiting.id, entry)
    wait_until(lambda: world.cloud._inbox.waiting, 5, what="second job waiting locally")
    stopper = threading.Thread(target=world.cloud.stop, kwargs={"grace": 5.0})
    stopper.start()
    wait_until(lambda: world.get(f"live/queue/echo/{waiting.id}"), 5, what="handed back")
    assert world.get(f"live/clouds/{cid}/state") == "draining"
    assert world.get(f"jobs/{waiting.id}/state") == "queued"
    assert world.get(f"live/inbox/{cid}/{waiting.id}") is None
    world.release.set()
    stopper.join(10)
    assert running.get(timeout=5) == "r"
    assert world.get(f"live/clouds/{cid}") is None
    assert world.get(f"live/inbox/{cid}") is None
    world.app.close()


def _stream_threads(cloud: Cloud) -> set[int | None]:
    """The threads of the cloud's inbox streams (MemoryListener names them by path)."""
    name = f"memory-listener:/{cloud.paths.inbox(cloud.id)}"
    return {t.ident for t in threading.enumerate() if t.name == name}


def test_a_default_cloud_runs_its_job_on_the_inbox_stream_thread(world: World) -> None:
    # Given a default cloud (one slot, no prefetch): no hand-off to a job thread
    assert world.app.tasks["whose"].delay(None).get(timeout=5) in _stream_threads(world.cloud)
    # Given a cloud with two slots: the stream must go on reading, so a job thread runs it
    cloud = world.replace_cloud(name="c2", concurrency=2)
    assert world.app.tasks["whose"].delay(None).get(timeout=5) not in _stream_threads(cloud)


def test_a_default_cloud_stops_while_its_stream_thread_runs_a_job() -> None:
    world = World()
    cid = world.cloud.id
    world.app.tasks["slow"].delay("r")
    assert world.started.wait(5)
    # Given an assignment the busy stream thread cannot read (placed by hand: the dispatcher
    # respects the single slot)
    waiting = world.app.tasks["echo"].submit(name="w", data="w")
    world.app.maker.flush()
    entry = world.get(f"live/queue/echo/{waiting.id}")
    world.dispatcher.close()
    assign(world.db, world.app.paths, cid, waiting.id, entry)
    # When the cloud stops and the handler outlives the grace
    stopper = threading.Thread(target=world.cloud.stop, kwargs={"grace": 0.2})
    stopper.start()
    stopper.join(10)
    # Then the stop does not wait on the stream thread, and the deregistration hands the
    # unseen assignment back
    assert not stopper.is_alive()
    assert world.get(f"live/queue/echo/{waiting.id}") is not None
    assert world.get(f"live/clouds/{cid}") is None
    # And the stream thread, once its handler returns, closes its stream and runs nothing more
    world.release.set()
    cloud = world.cloud
    wait_until(lambda: not _stream_threads(cloud), 5, what="the stream thread ended")
    assert world.get(f"live/queue/echo/{waiting.id}") is not None
    world.app.close()


def test_a_lending_handler_moves_the_inbox_to_a_new_stream(world: World) -> None:
    # Given the first fib on the stream thread: its sub-jobs arrive through a new stream
    before = world.cloud._listener
    assert world.app.tasks["fib"].delay(3).get(timeout=10) == 3
    assert world.cloud._listener is not before
    # And the stream it left is closed once its handler returned: one stream reads the inbox
    cloud = world.cloud
    wait_until(lambda: len(_stream_threads(cloud)) == 1, 5, what="the old stream closed")
    assert world.app.tasks["echo"].delay(1).get(timeout=5)["data"] == 1


def test_a_deleted_registration_comes_back_with_the_next_heartbeat() -> None:
    world = World(settings=Settings(heartbeat_interval=0.05, dead_after=1.0))
    try:
        cid = world.cloud.id
        world.db.delete(f"{ROOT}/live/clouds/{cid}")
        info = wait_until(lambda: world.get(f"live/clouds/{cid}"), 5, what="re-registered")
        assert CloudInfo.from_json(info, cid).types == frozenset(world.app.tasks)
    finally:
        world.close()


@pytest.mark.parametrize(
    ("kind", "path", "data", "expected"),
    [
        ("put", "/", {"a": {"x": 1}}, ({"a": {"x": 1}}, True)),
        ("put", "/", None, ({}, True)),
        ("patch", "/", {"a": None}, ({"a": None}, False)),
        ("put", "/a", {"x": 1}, ({"a": {"x": 1}}, False)),
        ("put", "/a/x", 1, None),
    ],
)
def test_inbox_changes(kind: str, path: str, data: Any, expected: Any) -> None:
    assert inbox_changes(kind, path, data) == expected


def test_a_completion_is_retried_until_the_database_takes_it(world: World) -> None:
    handle = world.app.tasks["slow"].delay("kept")
    assert world.started.wait(5)
    world.db.fail_writes = True
    world.release.set()
    wait_until(lambda: world.cloud.running == 0, 5, what="the handler returned")
    assert not handle.done()
    world.db.fail_writes = False
    assert handle.get(timeout=10) == "kept"
    assert world.get(f"jobs/{handle.id}/state") == "succeeded"


def test_a_prefetching_cloud_holds_more_jobs_but_runs_one_at_a_time() -> None:
    world = World()
    world.replace_cloud(name="pf", concurrency=1, prefetch=2)
    try:
        cid = world.cloud.id
        assert world.get(f"live/clouds/{cid}/slots") == 3
        slow = world.app.tasks["slow"].delay(0)
        assert world.started.wait(5)
        others = [world.app.tasks["echo"].delay(i) for i in range(2)]
        wait_until(lambda: len(world.get(f"live/inbox/{cid}") or {}) == 3, 5, what="prefetched")
        assert world.cloud.running == 1 and not any(h.done() for h in others)
        world.release.set()
        assert [h.get(timeout=5)["data"] for h in others] == [0, 1] and slow.get(timeout=5) == 0
    finally:
        world.close()


def test_a_finishing_job_thread_runs_the_next_prefetched_job_itself() -> None:
    # Given a prefetching cloud running a slow job, two more waiting in its inbox
    world = World()
    world.replace_cloud(name="pf", concurrency=1, prefetch=2)
    try:
        cid = world.cloud.id
        slow = world.app.tasks["slow"].delay(0)
        assert world.started.wait(5)
        others = [world.app.tasks["whose"].delay(i) for i in range(2)]
        wait_until(lambda: len(world.get(f"live/inbox/{cid}") or {}) == 3, 5, what="prefetched")
        # When the slow one finishes
        world.release.set()
        # Then the thread that finished each job ran the next (no hand-off to another thread)
        assert slow.get(timeout=5) == 0
        first, second = (h.get(timeout=5) for h in others)
        assert first == second
    finally:
        world.close()


def test_a_cloud_started_while_the_database_is_down_registers_once_it_is_back() -> None:
    world = World()
    world.cloud.stop(grace=1.0)
    world.db.fail_writes = True
    late = Cloud(world.app, name="late")
    starter = threading.Thread(target=late.start)
    starter.start()
    starter.join(0.3)
    assert starter.is_alive()  # still waiting to register
    world.db.fail_writes = False
    starter.join(10)
    world.cloud = late
    try:
        assert world.get(f"live/clouds/{late.id}/name") == "late"
        assert world.app.tasks["echo"].delay(5).get(timeout=5)["data"] == 5
    finally:
        world.close()


def test_a_job_handed_back_at_shutdown_does_not_report_its_late_failure() -> None:
    # Given a job still running when the drain's grace runs out: it is handed back
    world = World()
    cid = world.cloud.id
    handle = world.app.tasks["stuck"].delay("s")
    assert world.started.wait(5)
    world.dispatcher.close()
    world.cloud.stop(grace=0.2)
    assert world.get(f"live/queue/stuck/{handle.id}") is not None
    assert world.get(f"live/clouds/{cid}") is None
    # When it then fails (its app closing under it, say)
    world.release.set()
    wait_until(lambda: world.cloud.running == 0, 5, what="the handler returned")
    world.db.drain()
    # Then no outcome or reply says it failed: its requeued copy gives the one answer
    assert world.get(f"live/outcomes/{handle.id}") is None
    assert world.get(f"jobs/{handle.id}/state") == "queued"
    assert not handle.done()
    world.app.close()
    world.db.close()


@pytest.mark.parametrize(("lent", "state"), [(0, "up"), (2, "draining")])
def test_the_record_written_is_cloud_info_with_a_server_heartbeat(lent: int, state: str) -> None:
    fixed = CloudInfo(
        id="c1", name="n", types=frozenset({"a", "b"}), slots=3, started=1.7e9, host="h", pid=9
    )
    whole = replace(fixed, lent=lent, load=1.25, running=1, state=state, done=7, failed=2)
    made = record_json(
        fixed.to_json(), lent=lent, load=1.25, running=1, state=state, done=7, failed=2
    )
    assert made == {**whole.to_json(), "heartbeat": SERVER_TIMESTAMP}


def test_a_task_registered_after_the_start_is_in_the_next_record(world: World) -> None:
    world.app.tasks["echo"].delay(1).get(timeout=5)

    @world.app.task("late_type")
    def late_type(ticket: Ticket, data: Any) -> Any:
        return data

    world.app.tasks["echo"].delay(2).get(timeout=5)  # its completion carries the record
    info = CloudInfo.from_json(world.get(f"live/clouds/{world.cloud.id}"), world.cloud.id)
    assert "late_type" in info.types and info.done == 2


def test_a_completion_carries_the_record_only_when_it_is_due(world: World) -> None:
    # Given a cloud that wrote its record just now (its registration)
    cloud = world.replace_cloud(name="c2", record_every=60.0)
    cid = cloud.id

    def completion_of(job_id: str) -> dict[str, Any]:
        return next(v for _, v in world.db.updates if f"live/outcomes/{job_id}" in v)

    # When a job completes: the completion goes without the record (the counters wait)
    first = world.app.tasks["echo"].delay(1)
    assert first.get(timeout=5)["data"] == 1
    assert f"live/clouds/{cid}" not in completion_of(first.id)
    assert world.get(f"live/clouds/{cid}/done") == 0
    # And the next record write (a heartbeat) brings the counters
    cloud._write_once({})
    assert world.get(f"live/clouds/{cid}/done") == 1
    # When the record was last written longer ago than record_every: it goes along
    cloud.record_every = 0.0
    second = world.app.tasks["echo"].delay(2)
    assert second.get(timeout=5)["data"] == 2
    assert completion_of(second.id)[f"live/clouds/{cid}"]["done"] == 2


def test_the_load_average_is_read_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def getloadavg() -> tuple[float, float, float]:
        reads.append(1)
        return (float(len(reads)) + 0.123, 0.0, 0.0)

    monkeypatch.setattr(os, "getloadavg", getloadavg)
    now = [100.0]
    load = LoadAverage(every=1.0, clock=lambda: now[0])
    assert load() == 1.12 and load() == 1.12  # the second within the second: not read again
    now[0] += 0.999
    assert load() == 1.12 and len(reads) == 1
    now[0] += 0.001
    assert load() == 2.12 and len(reads) == 2
