"""Data and results round-trip exactly (issue 10, item 4): a handler receives exactly what the
maker sent, every JSON value, and the maker exactly what the handler returned, though the
database (MemoryDatabase keeps Firebase's rules) drops empty containers and turns objects
with keys 0, 1, ... into lists."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atmosphere import Atmosphere, JobFailed, Ticket
from atmosphere.jobs import JobSpec, Outcome, Reply
from atmosphere.station.views import job_detail
from tests.unit.user_kit import new_app, serving

TRICKY = [{}, [], {"empty": {}}, {"0": "a", "1": "b"}, [None, {}], {"a": None}, "", 0, None]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def exact(value: Any) -> str:
    """A value's JSON text: equal texts are the same JSON (1, 1.0 and True differ)."""
    return json.dumps(value)


class Echo:
    """An app whose handler returns what it got, remembering it as text per job."""

    def __init__(self, app: Atmosphere) -> None:
        self.seen: dict[str, str] = {}
        self.lock = threading.Lock()

        @app.task("echo")
        def echo(ticket: Ticket, data: Any) -> Any:
            with self.lock:
                self.seen[ticket["id"]] = exact(data)
            return data

        @app.task("refuse")
        def refuse(ticket: Ticket, data: Any) -> Any:
            app.done_with(ticket, data, data)


def round_trip(running: tuple[Atmosphere, Echo], value: Any) -> str:
    """Send ``value`` to the echo handler: it got exactly that, and so did we; the job id."""
    app, echo = running
    handle = app.tasks["echo"].delay(value)
    assert exact(handle.get(timeout=5)) == exact(value)
    assert echo.seen[handle.id] == exact(value)
    return handle.id


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Atmosphere, Echo]]:
    app = new_app()
    echo = Echo(app)
    with serving(app, concurrency=4):
        yield app, echo


@pytest.mark.parametrize("value", TRICKY, ids=[exact(v) for v in TRICKY])
def test_values_firebase_would_change_arrive_exactly(
    running: tuple[Atmosphere, Echo], value: Any
) -> None:
    app, _ = running
    job_id = round_trip(running, value)
    # The Weather Station shows the record's data and result as that JSON
    detail = job_detail(job_id, app.database.get(f"atmosphere/jobs/{job_id}"))
    assert exact(detail["data"]) == exact(value) and exact(detail["result"]) == exact(value)


def test_a_structured_error_and_its_result_arrive_exactly(
    running: tuple[Atmosphere, Echo],
) -> None:
    app, _ = running
    value = {"code": 404, "details": {}, "tried": []}
    with pytest.raises(JobFailed) as info:
        app.tasks["refuse"].delay(value).get(timeout=5)
    assert exact(info.value.error) == exact(value) and exact(info.value.result) == exact(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_any_json_value_round_trips_maker_to_handler_to_maker(
    running: tuple[Atmosphere, Echo], value: Any
) -> None:
    round_trip(running, value)


def test_records_written_before_encoding_are_still_read() -> None:
    # Given a queue entry, an outcome and a reply as older makers and clouds wrote them
    spec = JobSpec.from_json({"type": "t", "name": "n", "data": {"plain": [1, 2]}}, "j1")
    outcome = Outcome.from_json({"ok": True, "result": "plain"}, "j1")
    reply = Reply.from_json({"ok": True, "job": "j1", "result": {"plain": True}})
    # Then their plain fields are read as before
    assert (spec.data, outcome.result, reply.result) == (
        {"plain": [1, 2]},
        "plain",
        {"plain": True},
    )
    # And what is written now is encoded, and read back the same
    assert JobSpec.from_json(spec.to_json(), "j1").data == {"plain": [1, 2]}
    assert "data" not in spec.to_json() and spec.to_json()["data_json"] == '{"plain":[1,2]}'
