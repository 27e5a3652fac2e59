"""What a Celery user and a port of the original library write, end to end with real processes
(issue 10): a dispatcher, a cloud on tests.integration.user_tasks, and a maker here."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atmosphere import Atmosphere, JobFailed, Settings, Ticket, chain
from atmosphere.db.client import FirebaseDatabase
from atmosphere.rain import RainCloud, RainMaker
from tests.integration.conftest import CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess

pytestmark = pytest.mark.slow
MODULE = "tests.integration.user_tasks"


@pytest.fixture
def app(db_url: str) -> Iterator[Atmosphere]:
    """The user tasks' app as a maker on this test's database."""
    from tests.integration.user_tasks import make_app

    database = FirebaseDatabase(db_url)
    app = make_app(Settings.from_url(db_url), database)
    try:
        yield app
    finally:
        app.close()
        database.close()


def test_a_chain_of_bare_tasks_cascades(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], app: Atmosphere
) -> None:
    start_cloud(MODULE)
    first, second = app.tasks["first"], app.tasks["second"]
    result: Any = chain(first, second).submit().get(timeout=30)
    assert result["seen"] == {"first": {"a": 1, "b": 2, "c": 3}}
    mixed = chain(first.s({"p": 1}, name="job1"), second.s({"param2": "x"})).submit()
    assert mixed.get(timeout=30) == {
        "seen": {"param2": "x", "first": {"a": 1, "b": 2, "c": 3}},
        "name": "job1",
    }


def test_a_structured_error_crosses_the_dispatcher_as_json(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], app: Atmosphere
) -> None:
    start_cloud(MODULE)
    # A plain job: the cloud answers; a chain step: the dispatcher answers for the chain.
    for handle in (
        app.tasks["not_found"].delay({"user": "ada"}),
        chain(app.tasks["first"], app.tasks["not_found"]).submit(),
    ):
        with pytest.raises(JobFailed) as info:
            handle.get(timeout=30)
        assert info.value.error["code"] == 404 and info.value.error["reason"] == "no such user"
        assert info.value.result == {"tried": 1}


def test_the_original_hello_world_with_a_rain_cloud_in_this_process(
    dispatcher: DispatcherProcess, db_url: str
) -> None:
    # Given the original README's two sides, the cloud inside this test's process
    settings = Settings.from_url(db_url)
    databases = [FirebaseDatabase(db_url), FirebaseDatabase(db_url)]
    rain_cloud, rain_maker = RainCloud(), RainMaker()

    def local_function(ticket: Ticket, data: Any) -> None:
        result = f"{data['msg1']} {data['msg2']} from a handler that finished later"
        threading.Timer(0.05, rain_cloud.done_with, (ticket, None, result)).start()

    handle_jobs = {"remoteFunction": local_function}
    try:
        rain_cloud.init("responder", handle_jobs, settings=settings, database=databases[0])
        rain_maker.init("requester", settings=settings, database=databases[1])
        # When the maker submits with a callback
        got: list[Any] = []
        job = {
            "type": "remoteFunction",
            "name": "my first atmosphere job",
            "data": {"msg1": "Hello", "msg2": "World!"},
            "timeout": 30,
        }
        handle = rain_maker.submit(job, lambda error, data: got.append((error, data)))
        # Then the dispatcher process assigns it to the in-process cloud, which answers
        assert handle.get(timeout=30) == "Hello World! from a handler that finished later"
    finally:
        rain_maker.close()
        rain_cloud.close()
        for database in databases:
            database.close()


def test_async_handlers_await_together_within_the_slots(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], app: Atmosphere
) -> None:
    start_cloud(MODULE, concurrency=4)
    handles = [app.tasks["rendezvous"].delay(4) for _ in range(4)]
    results = [h.get(timeout=30) for h in handles]
    # All four were awaiting at once, on the cloud's one event loop thread
    assert {r["together"] for r in results} == {4}
    assert len({r["thread"] for r in results}) == 1
    assert results[0]["thread"].startswith("cloud-loop-")


TRICKY: list[Any] = [{}, [], {"empty": {}}, {"0": "a", "1": "b"}, [None, {}], {"a.b/#": [1, {}]}]


def test_data_and_results_round_trip_exactly_through_a_cloud_and_a_chain(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], app: Atmosphere
) -> None:
    start_cloud(MODULE, concurrency=2)
    echo = app.tasks["echo"]
    for value in TRICKY:
        assert json.dumps(echo.delay(value).get(timeout=30)) == json.dumps(value)
        # The dispatcher's cascade merges decoded values: {} and {"0": ...} stay what they are.
        got = chain(echo.s(value), echo.s({"own": {}})).submit().get(timeout=30)
        assert json.dumps(got) == json.dumps({"own": {}, "echo": value})
