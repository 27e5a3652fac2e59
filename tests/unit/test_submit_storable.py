"""Data the database would refuse is refused at submit with InvalidJob, and nothing is written
(issue 8, finding 3, the maker side): nesting counted from the database root where the data
will sit, strings over 10 MB, lone surrogates, and a value too big for one write."""

from __future__ import annotations

from typing import Any, cast

import pytest

from atmosphere import Atmosphere, InvalidJob, chain
from atmosphere.settings import Settings
from atmosphere.storable import MAX_VALUE_BYTES
from tests.unit.jobs_fakes import RecordingDatabase
from tests.unit.test_storable import nested


@pytest.fixture
def app() -> Atmosphere:
    # An operator may raise the data limit far above the default: the database's own limits
    # must still hold.
    settings = Settings(max_data_bytes=100_000_000)
    app = Atmosphere("t", settings=settings, database=RecordingDatabase())
    for name in ("first", "second"):
        app.task(name)(lambda ticket, data: data)
    return app


def _writes(app: Atmosphere) -> int:
    return len(cast(RecordingDatabase, app.database).updates)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # live/queue/first/{id}/data is 6 levels down: 26 more at most
        (nested(27), r"job data is nested 27 levels deep \(at job data\.a\.a\.a\.a\.a\.a\.\.\.\)"),
        ({"k": "x" * 11_000_000}, "job data holds a string of 11000000 bytes at job data.k"),
        ({"k": ["\udc80"]}, "not valid UTF-8 at job data.k.0"),
        ("x" * MAX_VALUE_BYTES, "one write carries it several times"),
    ],
)
def test_data_the_database_would_refuse_raises_invalid_job_and_writes_nothing(
    app: Atmosphere, data: Any, message: str
) -> None:
    with pytest.raises(InvalidJob, match=message):
        app.submit({"type": "first", "data": data}, lambda e, d: None)
    with pytest.raises(InvalidJob, match=message):
        app.tasks["first"].delay(data)
    assert _writes(app) == 0


def test_the_deepest_data_that_fits_is_taken(app: Atmosphere) -> None:
    app.tasks["first"].delay(nested(26))
    assert _writes(app) == 1


def test_a_chain_step_is_checked_where_the_chain_keeps_it(app: Atmosphere) -> None:
    # live/chains/{id}/steps/1/data is 7 levels down: 25 more at most
    ok = chain(app.tasks["first"].s(1), app.tasks["second"].s(nested(25)))
    ok.submit()
    too_deep = chain(app.tasks["first"].s(1), app.tasks["second"].s(nested(26)))
    with pytest.raises(InvalidJob, match="chain step 1 data is nested 26 levels deep"):
        too_deep.submit()
    assert _writes(app) == 1
