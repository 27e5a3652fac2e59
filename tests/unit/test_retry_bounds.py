"""``retries`` and the backoff are capped in the one validator every submission path goes through."""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere import Atmosphere, InvalidJob, InvalidSchedule, chain
from atmosphere.schedules import make_schedule
from atmosphere.validate import MAX_BACKOFF, MAX_RETRIES
from tests.unit.jobs_fakes import QUIET, RecordingDatabase


@pytest.fixture
def app() -> Atmosphere:
    app = Atmosphere("t", settings=QUIET, database=RecordingDatabase())

    @app.task("ping")
    def ping(ticket: Any, data: Any) -> Any:
        return data

    return app


def _writes(app: Atmosphere) -> int:
    db = app.database
    assert isinstance(db, RecordingDatabase)
    return len(db.updates)


def test_the_cap_itself_is_accepted(app: Atmosphere) -> None:
    app.submit({"type": "ping", "retries": MAX_RETRIES, "retry_backoff_max": MAX_BACKOFF})
    assert app.maker.flush(10)  # submit() returns before the outbox writes
    assert _writes(app) == 1


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"type": "ping", "retries": MAX_RETRIES + 1}, "over the limit of 100 extra attempts"),
        ({"type": "ping", "retries": 10**9}, "over the limit of 100"),
        ({"type": "ping", "retry_backoff": MAX_BACKOFF * 2}, "'retry_backoff' is 172800 s"),
        ({"type": "ping", "retry_backoff_max": 1e12}, "'retry_backoff_max' is 1e+12 s, over"),
    ],
)
def test_job_dict_over_the_caps(app: Atmosphere, job: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJob, match=message.replace("+", r"\+")):
        app.submit(job)
    assert _writes(app) == 0


def test_task_submit_and_decorator_over_the_cap(app: Atmosphere) -> None:
    with pytest.raises(InvalidJob, match="over the limit of 100"):
        app.tasks["ping"].submit(retries=MAX_RETRIES + 1)
    with pytest.raises(InvalidJob, match="over the limit of 100"):
        chain(type(app.tasks["ping"].s(1))(type="ping", retries=MAX_RETRIES + 1, app=app)).submit()
    with pytest.raises(InvalidJob, match="over the limit of 100"):
        app.task("many", retries=MAX_RETRIES + 1)(lambda ticket, data: data)
    assert _writes(app) == 0


def test_signature_and_chain_over_the_cap(app: Atmosphere) -> None:
    step = app.tasks["ping"].s(1)
    bad = type(step)(type="ping", retries=MAX_RETRIES + 1, app=app)
    with pytest.raises(InvalidJob, match="chain step 1 retries is 101"):
        chain(step, bad).submit()
    with pytest.raises(InvalidJob, match="chain step 1 'retries' is 101"):
        app.submit([{"type": "ping"}, {"type": "ping", "retries": 101}])
    assert _writes(app) == 0


def test_schedule_job_over_the_cap() -> None:
    with pytest.raises(InvalidSchedule, match="job retries is 101, over the limit"):
        make_schedule("beat", {"type": "ping", "retries": MAX_RETRIES + 1}, every=60)
