"""Data the database would refuse is refused at submit with InvalidJob, and nothing is written
(issue 8, finding 3, the maker side). Data travels encoded as one string (``data_json``, issue
10), so only its size can be refused: over 10 MB, or too big for one write; any nesting and
lone surrogates are kept exactly."""

from __future__ import annotations

from typing import Any, cast

import pytest

from atmosphere import Atmosphere, InvalidJob, chain
from atmosphere.jobs import JobSpec, encode_json
from atmosphere.settings import Settings
from atmosphere.storable import MAX_VALUE_BYTES, value_problem
from atmosphere.validate import _ALWAYS_STORABLE_CHARS, always_storable
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
        # Data sits encoded in one string (data_json): its size is what can be refused.
        ({"k": "x" * 11_000_000}, "job data holds a string of 110000"),
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


def test_data_of_any_depth_or_with_lone_surrogates_is_taken_exactly(app: Atmosphere) -> None:
    for data in (nested(40), {"k": ["\udc80"]}):
        handle = app.tasks["first"].delay(data)
        app.maker.flush()  # delay() returns before the outbox writes
        entry = app.database.get(f"atmosphere/live/queue/first/{handle.id}")
        assert JobSpec.from_json(entry, handle.id).data == data
    assert _writes(app) == 2


def test_a_chain_step_is_checked_where_the_chain_keeps_it(app: Atmosphere) -> None:
    ok = chain(app.tasks["first"].s(1), app.tasks["second"].s(nested(40)))
    ok.submit()
    too_big = chain(app.tasks["first"].s(1), app.tasks["second"].s("x" * MAX_VALUE_BYTES))
    with pytest.raises(InvalidJob, match="chain step 1 data is .* over the"):
        too_big.submit()
    app.maker.flush()  # submit() returns before the outbox writes
    assert _writes(app) == 1


def test_a_text_short_enough_to_skip_the_check_is_always_storable() -> None:
    # The worst text of that length: every character a control character, written as \u00XX.
    longest = "\x1f" * _ALWAYS_STORABLE_CHARS
    assert always_storable(longest) and not always_storable(longest + "x")
    assert value_problem(longest, "job data", depth=6, max_bytes=MAX_VALUE_BYTES) is None
    assert value_problem("\x1f" * (MAX_VALUE_BYTES // 6 + 1), "d", depth=6, max_bytes=1 << 30)


def test_encode_json_writes_none_as_null_and_still_refuses_a_nan_beside_a_null() -> None:
    assert encode_json(None) == "null"
    assert encode_json([None, 1.5]) == "[null,1.5]"
    with pytest.raises(InvalidJob, match="not JSON"):
        encode_json([None, float("nan")])
