"""submit_many splits its updates by encoded size as well as count; a job too large for any
update fails alone (JobTooLarge, an InvalidJob) and the others are written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from atmosphere import Atmosphere, InvalidJob
from atmosphere import maker as maker_module
from atmosphere.errors import JobTooLarge
from atmosphere.localdb.messages import Config
from atmosphere.maker import BATCH, MAX_UPDATE_BYTES
from atmosphere.settings import Settings
from atmosphere.storable import plan_batches
from tests.unit.jobs_fakes import RecordingDatabase

LIMIT = 100_000  # a small MAX_UPDATE_BYTES keeps these tests quick


@pytest.mark.parametrize(
    ("sizes", "max_count", "max_bytes", "groups", "too_large"),
    [
        ([], 3, 10, [], []),
        ([1, 1, 1, 1], 3, 10, [[0, 1, 2], [3]], []),
        ([4, 4, 4], 5, 10, [[0, 1], [2]], []),
        ([10, 1], 5, 10, [[0], [1]], []),
        ([1, 11, 1], 5, 10, [[0, 2]], [1]),
        ([11], 5, 10, [], [0]),
        ([3, 8, 3, 3], 5, 10, [[0], [1], [2, 3]], []),
    ],
)
def test_plan_batches(
    sizes: list[int], max_count: int, max_bytes: int, groups: list[list[int]], too_large: list[int]
) -> None:
    assert plan_batches(sizes, max_count, max_bytes) == (groups, too_large)


def test_the_update_limit_fits_the_servers_body_limit_even_escaped() -> None:
    # Non-ASCII text \\u-escaped by the stdlib fallback is at most three times its UTF-8 size.
    assert 3 * MAX_UPDATE_BYTES < Config().max_body


@pytest.fixture
def db() -> RecordingDatabase:
    return RecordingDatabase()


@pytest.fixture
def app(db: RecordingDatabase, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(maker_module, "MAX_UPDATE_BYTES", LIMIT)
    settings = Settings(heartbeat_interval=60.0, dead_after=120.0, max_data_bytes=10 * LIMIT)
    app = Atmosphere("t", settings=settings, database=db)

    @app.task("echo", timeout=10)
    def echo(ticket: Any, data: Any) -> Any:
        return data

    yield app
    app.close()


def _queued(db: RecordingDatabase) -> list[str]:
    return [key for _, values in db.updates for key in values if key.startswith("live/queue/")]


def test_big_jobs_are_split_by_size(app: Atmosphere, db: RecordingDatabase) -> None:
    # Given jobs of ~5 KB each: 500 of them (the count limit) would be ~5 MB in one update
    handles = app.tasks["echo"].map(["x" * 5_000] * 60)
    # I expect every update under the byte limit, and every job written once
    assert all(len(orjson.dumps(values)) <= LIMIT for _, values in db.updates)
    assert len(db.updates) > 1
    assert sorted(_queued(db)) == sorted(f"live/queue/echo/{h.id}" for h in handles)


def test_small_jobs_are_still_split_by_count(
    app: Atmosphere, db: RecordingDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maker_module, "MAX_UPDATE_BYTES", MAX_UPDATE_BYTES)
    app.tasks["echo"].map(range(BATCH + 1), forget=True)
    assert [len(_queued_in(values)) for _, values in db.updates] == [BATCH, 1]


def _queued_in(values: dict[str, Any]) -> list[str]:
    return [key for key in values if key.startswith("live/queue/")]


def test_a_job_too_large_for_any_update_fails_alone(app: Atmosphere, db: RecordingDatabase) -> None:
    # Given one job over the update limit between two small ones
    small, huge, other = app.tasks["echo"].map([1, "y" * (2 * LIMIT), 2])
    # I expect the small ones written and tracked, the huge one answered at once, by name
    assert sorted(_queued(db)) == sorted(f"live/queue/echo/{h.id}" for h in (small, other))
    with pytest.raises(JobTooLarge, match=f"job {huge.id} \\(echo\\) is \\d+ bytes encoded"):
        huge.get(timeout=1)
    with pytest.raises(InvalidJob):
        huge.get(timeout=1)
    assert app.maker.pending == 2


def test_a_fire_and_forget_job_too_large_is_logged_as_an_error(
    app: Atmosphere, db: RecordingDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    _, huge = app.tasks["echo"].map([1, "y" * (2 * LIMIT)], forget=True)
    assert len(_queued(db)) == 1
    assert any(r.levelname == "ERROR" and huge.id in r.getMessage() for r in caplog.records)


def test_one_job_too_large_raises_invalid_job_and_writes_nothing(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    with pytest.raises(InvalidJob, match="over the 100000 bytes one database write may carry"):
        app.tasks["echo"].submit(data="z" * (2 * LIMIT))
    assert db.updates == []
    assert app.maker.pending == 0
