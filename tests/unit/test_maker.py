"""The maker delivers each reply once, enforces deadlines locally, and survives reconnects."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from atmosphere import Atmosphere, JobFailed, JobTimeout, UnknownTaskType
from atmosphere.jobs import Reply
from tests.support import wait_until
from tests.unit.jobs_fakes import QUIET, RecordingDatabase


@pytest.fixture
def db() -> RecordingDatabase:
    return RecordingDatabase()


@pytest.fixture
def app(db: RecordingDatabase) -> Any:
    app = Atmosphere("t", settings=QUIET, database=db)

    @app.task("echo", timeout=10)
    def echo(ticket: Any, data: Any) -> Any:
        return data

    yield app
    app.close()


def reply(app: Atmosphere, job_id: str, reply: Reply) -> None:
    """Write a reply the way a cloud or the dispatcher does."""
    app.database.update("atmosphere", {f"replies/{app.maker.id}/{job_id}": reply.to_json()})


class Calls:
    """A callback that records its calls and lets a test wait for the first."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.event = threading.Event()

    def __call__(self, error: Any, data: Any) -> None:
        self.calls.append((error, data))
        self.event.set()


def test_get_returns_the_result(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)
    reply(app, handle.id, Reply(ok=True, job=handle.id, result={"x": 1}))
    assert handle.get(timeout=5) == {"x": 1}
    assert handle.done()


def test_each_reply_is_delivered_once(app: Atmosphere, db: RecordingDatabase) -> None:
    calls = Calls()
    handle = app.tasks["echo"].submit(data=1, callback=calls)
    reply(app, handle.id, Reply(ok=True, job=handle.id, result="first"))
    reply(app, handle.id, Reply(ok=True, job=handle.id, result="second"))
    assert handle.get(timeout=5) == "first"
    db.drain()
    assert calls.event.wait(5)
    late = Calls()
    handle.then(late)  # a callback added after the response gets it too, once
    assert late.event.wait(5)
    assert calls.calls == [(None, "first")] and late.calls == [(None, "first")]
    assert app.maker.pending == 0


def test_error_reply_raises_job_failed_with_the_remote_traceback(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)
    error = {"kind": "JobFailed", "message": "boom", "type": "ValueError", "traceback": "TB"}
    reply(app, handle.id, Reply(ok=False, job=handle.id, error=error))
    with pytest.raises(JobFailed, match="boom") as info:
        handle.get(timeout=5)
    assert info.value.remote_traceback == "TB"
    assert info.value.error_type == "ValueError"
    assert info.value.job_id == handle.id


def test_unknown_type_reply_raises_unknown_task_type(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)
    error = {"kind": "UnknownTaskType", "message": "no task for 'echo'"}
    reply(app, handle.id, Reply(ok=False, job=handle.id, error=error))
    with pytest.raises(UnknownTaskType):
        handle.get(timeout=5)


def test_timeout_then_a_late_reply_is_ignored(app: Atmosphere, db: RecordingDatabase) -> None:
    calls = Calls()
    handle = app.tasks["echo"].submit(data=1, timeout=0.2, callback=calls)
    with pytest.raises(JobTimeout, match="by its deadline"):
        handle.get()
    reply(app, handle.id, Reply(ok=True, job=handle.id, result="late"))
    db.drain()
    with pytest.raises(JobTimeout):
        handle.get()
    assert calls.event.wait(5)
    assert len(calls.calls) == 1 and isinstance(calls.calls[0][0], JobTimeout)


def test_get_with_a_shorter_wait_leaves_the_job_pending(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)
    with pytest.raises(JobTimeout, match="still waiting"):
        handle.get(timeout=0.05)
    reply(app, handle.id, Reply(ok=True, job=handle.id, result=2))
    assert handle.get(timeout=5) == 2


def test_original_form_callback(app: Atmosphere) -> None:
    calls = Calls()
    handle = app.submit({"type": "echo", "data": {"msg": "hi"}, "timeout": 5}, calls)
    reply(app, handle.id, Reply(ok=True, job=handle.id, result="done"))
    assert calls.event.wait(5)
    assert calls.calls == [(None, "done")]


def test_await_a_handle(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)

    async def main() -> Any:
        threading.Timer(
            0.05, reply, (app, handle.id, Reply(ok=True, job=handle.id, result=7))
        ).start()
        return await handle

    assert asyncio.run(main()) == 7


def test_await_raises_the_typed_error(app: Atmosphere) -> None:
    handle = app.tasks["echo"].submit(data=1, timeout=0.05)

    async def main() -> Any:
        return await handle

    with pytest.raises(JobTimeout):
        asyncio.run(main())


def test_replies_written_while_disconnected_arrive_on_reconnect(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    handle = app.tasks["echo"].delay(1)
    wait_until(lambda: db._listeners and db._listeners[0].connected, 5)
    db.disconnect()
    reply(app, handle.id, Reply(ok=True, job=handle.id, result="while away"))
    db.drain()
    assert not handle.done()
    db.reconnect()
    assert handle.get(timeout=5) == "while away"


def test_delivered_replies_are_deleted_in_a_batch(app: Atmosphere, db: RecordingDatabase) -> None:
    handles = [app.tasks["echo"].delay(i) for i in range(5)]
    app.database.update(
        "atmosphere",
        {
            f"replies/{app.maker.id}/{h.id}": {"ok": True, "job": h.id, "result": i}
            for i, h in enumerate(handles)
        },
    )
    assert [h.get(timeout=5) for h in handles] == [0, 1, 2, 3, 4]
    wait_until(lambda: db.get(f"atmosphere/replies/{app.maker.id}") is None, 5)
    deletes = [v for p, v in db.updates if p.endswith(app.maker.id)]
    # One batch (two if a flush fell between the deliveries): never a write per reply.
    assert sum(len(d) for d in deletes) == 5 and len(deletes) <= 2


def test_a_malformed_reply_fails_the_handle(app: Atmosphere) -> None:
    handle = app.tasks["echo"].delay(1)
    app.database.update("atmosphere", {f"replies/{app.maker.id}/{handle.id}": "garbage"})
    with pytest.raises(JobFailed, match="malformed reply"):
        handle.get(timeout=5)


def test_answered_jobs_leave_no_deadline_behind(app: Atmosphere, db: RecordingDatabase) -> None:
    # Given many jobs with a long timeout, each answered at once
    for i in range(300):
        handle = app.tasks["echo"].submit(data=i, timeout=3600)
        reply(app, handle.id, Reply(ok=True, job=handle.id, result=i))
        assert handle.get(timeout=5) == i
    # Then the maker does not keep an hour's worth of dead deadlines in memory
    assert app.maker.pending == 0
    assert len(app.maker._deadlines) <= 64


def test_closing_the_app_answers_every_pending_handle_once(app: Atmosphere) -> None:
    # Given a job waiting for its response, with a callback
    calls = Calls()
    handle = app.tasks["echo"].submit(data=1, callback=calls)
    # When the app closes before the response arrives
    app.close()
    # Then the caller is not left waiting forever: one JobTimeout, to get() and to the callback
    assert handle.done()
    with pytest.raises(JobTimeout, match="closed"):
        handle.get(timeout=0)
    assert calls.event.wait(5)
    assert len(calls.calls) == 1 and isinstance(calls.calls[0][0], JobTimeout)
