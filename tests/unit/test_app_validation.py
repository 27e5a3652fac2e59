"""Submission is checked at once: every mistake raises InvalidJob with a clear message, and
nothing is written."""

from __future__ import annotations

import math
from typing import Any

import pytest

from atmosphere import Atmosphere, InvalidJob, chain
from atmosphere.settings import Settings
from tests.unit.jobs_fakes import RecordingDatabase


@pytest.fixture
def app() -> Atmosphere:
    app = Atmosphere("t", settings=Settings(max_data_bytes=200), database=RecordingDatabase())

    @app.task("first")
    def first(ticket: Any, data: Any) -> Any:
        return data

    @app.task("second")
    def second(ticket: Any, data: Any) -> Any:
        return data

    return app


def _writes(app: Atmosphere) -> int:
    db = app.database
    assert isinstance(db, RecordingDatabase)
    return len(db.updates)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"type": "first", "nmae": "x"}, "unknown option(s) 'nmae'"),
        ({"name": "x", "data": 1}, "no 'type'"),
        ({"type": "a.b"}, "contains '.'"),
        ({"type": "first", "name": "a\nb"}, "control character"),
        ({"type": ""}, "non-empty string"),
        ({"type": 3}, "non-empty string"),
        ({"type": "first", "data": {1, 2}}, "not JSON-serialisable"),
        ({"type": "first", "data": math.nan}, "not JSON-serialisable"),
        ({"type": "first", "data": "x" * 300}, "over the 200-byte limit"),
        ({"type": "first", "timeout": 0}, "must be positive"),
        ({"type": "first", "timeout": -1}, "must be positive"),
        ({"type": "first", "timeout": "5"}, "number of seconds"),
        ({"type": "first", "retries": -1}, "whole number"),
        ({"type": "first", "countdown": -2}, "must not be negative"),
        ({"type": "first", "countdown": 1, "eta": 5.0}, "give one"),
        ({"type": "first", "callback": "yes"}, "true or false"),
        ("first", "a job dict or a list"),
    ],
)
def test_bad_job_raises_invalid_job_and_writes_nothing(
    app: Atmosphere, job: Any, message: str
) -> None:
    with pytest.raises(InvalidJob, match=message.replace("(", r"\(").replace(")", r"\)")):
        app.submit(job, lambda e, d: None)
    assert _writes(app) == 0


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ([], "at least one job"),
        (
            [{"type": "first", "callback": True}, {"type": "second", "callback": True}],
            "only one job of a chain",
        ),
        ([{"type": "first"}, {"type": "second", "name": "n"}], "take the chain's name"),
        ([{"type": "first"}, {"type": "second", "timeout": 3}], "counts from its submission"),
        ([{"type": "first", "countdown": 3}, {"type": "second"}], "cannot be delayed"),
        ([{"type": "first"}, {"type": "sec#ond"}], "chain step 1 type"),
    ],
)
def test_bad_chain_raises_invalid_job(app: Atmosphere, jobs: Any, message: str) -> None:
    with pytest.raises(InvalidJob, match=message):
        app.submit(jobs, lambda e, d: None)
    assert _writes(app) == 0


def test_task_submit_checks_its_arguments(app: Atmosphere) -> None:
    task = app.tasks["first"]
    with pytest.raises(InvalidJob, match="timeout must be positive"):
        task.submit(data=1, timeout=-5)
    with pytest.raises(InvalidJob, match="not JSON-serialisable"):
        task.delay(object())
    with pytest.raises(InvalidJob, match="name"):
        task.submit(name="a\x00b")
    assert _writes(app) == 0


def test_signature_chain_with_two_callbacks_is_refused(app: Atmosphere) -> None:
    first, second = app.tasks["first"], app.tasks["second"]
    with pytest.raises(InvalidJob, match="only one job of a chain"):
        chain(first.s(1, callback=True), second.s(2, callback=True)).submit()
    with pytest.raises(InvalidJob, match="at least one job"):
        chain()


def test_task_options_are_checked_when_registering(app: Atmosphere) -> None:
    with pytest.raises(InvalidJob, match="must be positive"):
        app.task("x", timeout=0)
    with pytest.raises(InvalidJob, match="contains"):
        app.task("x.y")(lambda t, d: None)
