"""What a Celery user and a port of the original library write must just work (issue 10).

Each test is written from the user's side, through the public API, on an in-memory database
with a cloud in this process (tests/unit/user_kit.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from atmosphere import (
    Atmosphere,
    AtmosphereError,
    InvalidJob,
    JobFailed,
    JobTimeout,
    ResponseTimeout,
    Task,
    Ticket,
    chain,
)
from atmosphere.jobs import ChainState, JobSpec
from atmosphere.paths import Paths
from atmosphere.rain import RainCloud, RainMaker
from atmosphere.station.jobs_query import JobFilter, search_jobs
from tests.support import wait_until
from tests.unit.jobs_fakes import QUIET, FakeDispatcher, RecordingDatabase
from tests.unit.user_kit import new_app, serving


def test_a_bare_task_decorator_registers_the_function_under_its_own_name() -> None:
    # Given a handler decorated with a bare @app.task, as in Celery
    app = new_app()

    @app.task
    def sync_user(ticket: Ticket, data: Any) -> Any:
        return {"user": ticket["name"], "plan": data}

    @app.task()
    def send_invoice(ticket: Ticket, data: Any) -> Any:
        return f"invoice {data}"

    # Then it is a Task registered for its function's name
    assert isinstance(sync_user, Task) and isinstance(send_invoice, Task)
    assert set(app.tasks) == {"sync_user", "send_invoice"}
    assert sync_user(Ticket(type="sync_user", name="x", id="1"), "pro") == {
        "user": "x",
        "plan": "pro",
    }
    # And jobs of that type run on a cloud
    with serving(app):
        assert sync_user.submit(name="ada", data="pro").get(timeout=5) == {
            "user": "ada",
            "plan": "pro",
        }
        job = {"type": "send_invoice", "data": 42}
        assert app.submit(job, lambda error, data: None).get(timeout=5) == "invoice 42"


def test_chain_takes_tasks_and_signatures_alike() -> None:
    # Given two tasks
    app = new_app()

    @app.task("first")
    def first(ticket: Ticket, data: Any) -> Any:
        return data

    @app.task("second")
    def second(ticket: Ticket, data: Any) -> Any:
        return data

    # When a chain is built from the tasks themselves, or mixed with a signature
    handle = chain(first, second).submit()
    mixed = chain(first.s({"p": 1}), second).submit()
    app.maker.flush()  # delay() returns before the outbox writes

    # Then both are submitted as chains of those types (step 0 queued, the chain recorded)
    for h, data in ((handle, None), (mixed, {"p": 1})):
        state = ChainState.from_json(app.database.get(f"atmosphere/live/chains/{h.id}"), h.id)
        assert [s.type for s in state.steps] == ["first", "second"]
        step0 = app.database.get(f"atmosphere/live/queue/first/{h.id}-0")
        assert JobSpec.from_json(step0, f"{h.id}-0").data == data
    app.close()


@pytest.mark.parametrize("bad", [5, "first", {"type": "first"}, None])
def test_chain_of_anything_else_says_what_it_expected(bad: Any) -> None:
    app = new_app()

    @app.task("first")
    def first(ticket: Ticket, data: Any) -> Any:
        return data

    with pytest.raises(InvalidJob, match="chain step 1 .* a chain takes tasks or signatures"):
        chain(first, bad)


NAMES = ["special job", "user1", "ada@example.com", "a.b/c#[0]$", "Zoë 東京", "x" * 1000]


def test_job_names_are_free_text_labels() -> None:
    # Given a handler that answers with the name it was given
    app = new_app()

    @app.task("named")
    def named(ticket: Ticket, data: Any) -> Any:
        return ticket["name"]

    with serving(app):
        # When jobs and a chain are submitted with names the original library allowed
        handles = [named.submit(name=n) for n in NAMES]
        original = app.submit({"type": "named", "name": "special job"}, lambda e, d: None)
        # Then every name reaches the handler unchanged
        assert [h.get(timeout=5) for h in handles] == NAMES
        assert original.get(timeout=5) == "special job"
        # And the Weather Station finds a job by such a name (a query value, not a path)
        found = search_jobs(app.database, app.paths, JobFilter(name="a.b/c#[0]$"))
        assert [row["id"] for row in found["jobs"]] == [handles[3].id]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty string"),
        (5, "non-empty string"),
        ("a\nb", "control character"),
        ("tab\there", "control character"),
        ("x" * 1001, "over the 1000 allowed"),
    ],
    ids=["empty", "number", "newline", "tab", "too-long"],
)
def test_a_name_is_refused_only_for_its_type_length_or_control_characters(
    name: Any, message: str
) -> None:
    app = new_app()
    with pytest.raises(InvalidJob, match=message):
        app.submit({"type": "named", "name": name}, lambda e, d: None)
    assert app.database.get("atmosphere") is None


def test_a_structured_error_reaches_the_caller_as_that_json_value_with_its_result() -> None:
    # Given handlers that finish with done_with and a JSON error (and a result beside it)
    app = new_app()

    @app.task("lookup")
    def lookup(ticket: Ticket, data: Any) -> Any:
        app.done_with(
            ticket, {"code": 404, "reason": f"no user {data}"}, data and {"tried": [data]}
        )

    @app.task("broken")
    def broken(ticket: Ticket, data: Any) -> Any:
        app.done_with(ticket, KeyError("plan"), {"partial": True})

    with serving(app):
        # When the caller waits
        with pytest.raises(JobFailed) as info:
            lookup.delay("ada").get(timeout=5)
        # Then the error is that value, not its repr, and the result is kept
        assert info.value.error == {"code": 404, "reason": "no user ada"}
        assert info.value.result == {"tried": ["ada"]}
        assert "404" in str(info.value)
        # And the original callback form gets (error, data) as done_with gave them
        got: list[Any] = []
        done = threading.Event()

        def callback(error: Any, data: Any) -> None:
            got.append((error, data))
            done.set()

        app.submit({"type": "lookup", "data": "bob"}, callback)
        assert done.wait(5)
        assert isinstance(got[0][0], JobFailed)
        assert (got[0][0].error, got[0][1]) == (
            {"code": 404, "reason": "no user bob"},
            {"tried": ["bob"]},
        )
        # And an exception passed to done_with keeps the result too
        with pytest.raises(JobFailed, match="plan") as raised:
            broken.delay(None).get(timeout=5)
        assert (raised.value.error_type, raised.value.result) == ("KeyError", {"partial": True})


def test_app_submit_without_a_callback_is_fire_and_forget_and_says_how_to_wait() -> None:
    # Given the original form without a callback (as submit(job, undefined) in the original)
    app = new_app()
    handle = app.submit({"type": "audit", "data": 1})
    app.maker.flush()  # delay() returns before the outbox writes
    # Then nothing is tracked: the record has no reply_to, and waiting says what to do instead
    assert not handle.tracked
    assert "reply_to" not in app.database.get(f"atmosphere/jobs/{handle.id}")
    with pytest.raises(AtmosphereError, match=r"pass a callback, app.submit\(job, callback\)"):
        handle.get(timeout=1)
    app.close()


def test_task_submit_takes_data_positionally_like_delay_and_s() -> None:
    app = new_app()

    @app.task
    def echo(ticket: Ticket, data: Any) -> Any:
        return data

    with serving(app):
        assert echo.submit({"a": 1}, name="n").get(timeout=5) == {"a": 1}
        assert echo.submit(data=[2]).get(timeout=5) == [2]  # the keyword still works
        assert echo.s({"a": 1}).data == echo.submit({"a": 1}).get(timeout=5)


def test_stopping_to_wait_and_a_job_timing_out_are_two_errors() -> None:
    # Given a job that waits until released, with a short timeout of its own
    app = new_app()
    release = threading.Event()

    @app.task(timeout=0.5)
    def held(ticket: Ticket, data: Any) -> Any:
        release.wait(10)
        return "done"

    with serving(app, concurrency=2):
        # When the caller stops waiting early: ResponseTimeout (a JobTimeout), handle still usable
        handle = held.submit(timeout=30)
        with pytest.raises(ResponseTimeout, match="has not timed out"):
            handle.get(timeout=0.05)
        assert issubclass(ResponseTimeout, JobTimeout)
        # When the job's own timeout passes: JobTimeout, and not a ResponseTimeout
        late = held.delay(None)
        with pytest.raises(JobTimeout) as info:
            late.get(timeout=10)
        assert not isinstance(info.value, ResponseTimeout)
        release.set()
        assert handle.get(timeout=5) == "done"


def test_a_module_level_task_belongs_to_the_app_that_includes_its_module() -> None:
    from tests.unit import shared_tasks

    # Given a reusable module whose tasks use the module-level @task
    app = new_app()
    assert shared_tasks.geo_lookup.app is None
    with pytest.raises(AtmosphereError, match=r"not registered on an app yet: call app.include"):
        shared_tasks.geo_lookup.delay("Paris")
    # When an app includes the module (by name, or the module itself)
    app.include("tests.unit.shared_tasks")
    app.include(shared_tasks)  # twice is harmless
    # Then its tasks are registered there and submit through it
    assert set(app.tasks) == {"normalise_email", "geoLookup"}  # not "internal" (another app's)
    with serving(app):
        assert shared_tasks.normalise_email.delay(" Ada@X.org ").get(timeout=5) == "ada@x.org"
        assert shared_tasks.geo_lookup.delay("Paris").get(timeout=5) == {
            "city": "Paris",
            "by": "geoLookup",
        }
    # And another app that includes them gets its own copies
    other = new_app("other")
    other.include(shared_tasks)
    assert other.tasks["geoLookup"].app is other and shared_tasks.geo_lookup.app is app
    assert other.tasks["geoLookup"].timeout == 5
    other.close()


def test_a_cloud_runs_inside_this_process_as_a_context_manager() -> None:
    # Given an app and something that assigns jobs (the dispatcher's part)
    app = new_app()

    @app.task
    def double(ticket: Ticket, data: Any) -> Any:
        return data * 2

    dispatcher = FakeDispatcher(app.database, app.paths)  # type: ignore[arg-type]
    # When a cloud runs inside this process for the block
    with app.start_cloud(name="in-process", concurrency=2) as cloud:
        assert app.database.get(f"atmosphere/live/clouds/{cloud.id}/name") == "in-process"
        # Then jobs run on it
        assert double.delay(21).get(timeout=5) == 42
    # And it is gone afterwards (drained and deregistered)
    assert app.database.get("atmosphere/live/clouds") is None
    dispatcher.close()
    app.close()


def test_the_original_entry_points_read_like_the_original() -> None:
    # Given the two sides of the original README's hello world, on one database
    db = RecordingDatabase()
    dispatcher = FakeDispatcher(db, Paths("atmosphere"))
    rain_maker, rain_cloud = RainMaker(), RainCloud()
    inits: list[Any] = []

    def local_function(ticket: Ticket, data: Any) -> None:
        rain_cloud.done_with(ticket, None, f"Doing {data['msg']} work here!")

    handle_jobs = {"remoteFunction": local_function}
    rain_cloud.init("responder", handle_jobs, inits.append, settings=QUIET, database=db)
    rain_maker.init("requester", inits.append, settings=QUIET, database=db)
    assert inits == [None, None]
    try:
        # When the maker submits the README's job with a callback
        answered = threading.Event()
        got: list[Any] = []
        job = {"type": "remoteFunction", "name": "special job", "data": {"msg": "useful"}}

        def callback(error: Any, data: Any) -> None:
            got.append((error, data))
            answered.set()

        rain_maker.submit(job, callback)
        # Then the callback gets what the handler gave done_with
        assert answered.wait(5)
        assert got == [(None, "Doing useful work here!")]
        # And a rain cloud is a rain maker too
        handle = rain_cloud.submit({"type": "remoteFunction", "data": {"msg": "m"}}, print)
        assert handle.get(timeout=5) == "Doing m work here!"
    finally:
        rain_maker.close()
        rain_cloud.close()
        dispatcher.close()
    assert rain_cloud.wait(0)  # closed
    assert db.get("atmosphere/live/clouds") is None
    with pytest.raises(AtmosphereError, match="init"):
        rain_maker.submit(job)


def test_handle_jobs_handlers_finish_only_through_done_with() -> None:
    # Given the original registration form: handlers that finish later, from another thread
    app = new_app()

    def later(ticket: Ticket, data: Any) -> str:
        threading.Timer(0.1, app.done_with, (ticket, None, f"later {data}")).start()
        return "ignored"  # what a handle_jobs handler returns means nothing

    def at_once(ticket: Ticket, data: Any) -> None:
        app.done_with(ticket, None, {"at once": data})

    def broken(ticket: Ticket, data: Any) -> None:
        raise ValueError("no done_with at all")

    app.handle_jobs({"later": later, "atOnce": at_once, "broken": broken})
    with serving(app):
        # Then each answers with what it gave done_with, however late, without LATER
        job = {"type": "later", "data": 1}
        assert app.submit(job, lambda e, d: None).get(timeout=5) == "later 1"
        assert app.tasks["atOnce"].delay(2).get(timeout=5) == {"at once": 2}
        # And a handler that raises fails its job
        with pytest.raises(JobFailed, match="no done_with at all"):
            app.tasks["broken"].delay(3).get(timeout=5)


def test_a_done_with_after_the_handler_returned_is_an_error_naming_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a decorator-form handler that calls done_with later but forgets to return LATER
    app = new_app()
    called: list[bool] = []
    finished = threading.Event()

    @app.task
    def forgetful(ticket: Ticket, data: Any) -> None:
        def finish() -> None:
            called.append(app.done_with(ticket, None, "too late"))
            finished.set()

        threading.Timer(0.2, finish).start()

    with serving(app):
        # Then the job answers None at once (a return finishes it)
        assert forgetful.delay(None).get(timeout=5) is None
        # And the late done_with is refused with an ERROR that names the fix
        assert finished.wait(5)
    assert called == [False]
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "done_with" in r.message]
    assert errors and "return LATER" in errors[0].message
    assert "app.handle_jobs" in errors[0].message


def test_async_handlers_run_many_at_once_on_one_event_loop_within_the_slots() -> None:
    # Given an async handler that waits until all five of its jobs are in flight at once
    app = new_app()
    in_flight: list[int] = []
    threads: set[int] = set()
    all_in: list[asyncio.Event] = []  # made on the cloud's loop by the first job

    @app.task
    async def fetch(ticket: Ticket, data: Any) -> Any:
        threads.add(threading.get_ident())
        if not all_in:
            all_in.append(asyncio.Event())
        in_flight.append(data)
        if len(in_flight) == 5:
            all_in[0].set()
        await asyncio.wait_for(all_in[0].wait(), 10)
        return {"fetched": data}

    with serving(app, concurrency=5):
        # When five jobs are submitted to a cloud with five slots
        handles = [fetch.delay(i) for i in range(5)]
        # Then all five were awaiting at once, on one thread (the cloud's loop)
        assert [h.get(timeout=10) for h in handles] == [{"fetched": i} for i in range(5)]
    assert sorted(in_flight) == [0, 1, 2, 3, 4] and len(threads) == 1


def test_an_async_handler_awaits_a_sub_job_on_an_exclusive_cloud() -> None:
    # Given one exclusive cloud for both types: awaiting the sub-job must lend the slot
    app = new_app()

    @app.task
    async def inner(ticket: Ticket, data: Any) -> Any:
        return data + 1

    @app.task
    async def outer(ticket: Ticket, data: Any) -> Any:
        return {"inner": await inner.delay(data), "raised": await _failure(app)}

    @app.task
    async def fails(ticket: Ticket, data: Any) -> Any:
        raise LookupError("async boom")

    with serving(app, concurrency=1):
        assert outer.delay(1).get(timeout=10) == {"inner": 2, "raised": "async boom"}
        with pytest.raises(JobFailed, match="async boom") as info:
            fails.delay(None).get(timeout=5)
        assert info.value.error_type == "LookupError"


async def _failure(app: Atmosphere) -> str:
    try:
        await app.tasks["fails"].delay(None)
    except JobFailed as exc:
        return exc.message
    return "no error"


def test_an_async_handler_still_awaiting_when_its_cloud_stops_does_not_hang_its_thread() -> None:
    # Given an async handler that never finishes on its own
    app = new_app()
    started = threading.Event()

    @app.task
    async def forever(ticket: Ticket, data: Any) -> Any:
        started.set()
        await asyncio.Event().wait()

    with serving(app) as cloud:
        forever.delay(None)
        assert started.wait(5)
        # When the cloud stops with no grace left for it
        cloud.stop(grace=0.2)
        # Then its job thread ends (the coroutine is cancelled), freeing the slot
        wait_until(lambda: cloud.running == 0, 5, what="the job thread ended")
