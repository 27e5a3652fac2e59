"""A completion the database refuses is never retried in a loop (issue 8, finding 3).

Refused once, it is rewritten as an ``InvalidResult`` failure without the result; refused in
that form too, the job is dropped (record failed, inbox entry freed); a database that stays
unreachable is retried only for the cloud's ``patience``, then the job is let go and runs again
when the inbox stream resyncs. In every case the slot is freed for the next job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from atmosphere import InvalidResult, JobTimeout
from atmosphere.completion import completion_writes
from atmosphere.errors import RequestRefused
from tests.support import wait_until
from tests.unit.test_cloud import World

Writes = Mapping[str, Any]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def refuse(
    world: World, monkeypatch: pytest.MonkeyPatch, when: Callable[[Writes], bool]
) -> list[Writes]:
    """Make the database answer 400 to every update ``when`` picks; the refused ones."""
    refused: list[Writes] = []
    update = world.db.update

    def refusing(path: str, values: Writes) -> None:
        if when(values):
            refused.append(dict(values))
            raise RequestRefused("cannot PATCH '/atmosphere': HTTP 400: Invalid data", status=400)
        update(path, values)

    monkeypatch.setattr(world.db, "update", refusing)
    return refused


def _completes(writes: Writes) -> bool:
    return any(key.startswith("live/outcomes/") for key in writes)


def test_a_refused_completion_becomes_an_invalid_result_failure_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database that refuses any completion carrying the word "poison"
    refused = refuse(world, monkeypatch, lambda w: _completes(w) and "poison" in repr(w))
    # When a handler returns it
    handle = world.app.tasks["echo"].delay("poison")
    # Then the caller gets InvalidResult, the record says failed, and nothing was retried
    with pytest.raises(InvalidResult, match="the database refused to store this job's"):
        handle.get(timeout=5)
    record = world.get(f"jobs/{handle.id}")
    assert record["state"] == "failed" and record["error"]["kind"] == "InvalidResult"
    assert "result" not in record
    assert len(refused) == 1
    assert world.get(f"live/clouds/{world.cloud.id}/failed") == 1
    # And the slot is free for the next job
    assert world.app.tasks["echo"].delay("fine").get(timeout=5)["data"] == "fine"


def test_a_completion_refused_in_every_form_drops_the_job_and_frees_the_slot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running job whose outcome the database refuses, however it is written
    handle = world.app.tasks["slow"].delay("kept")
    assert world.started.wait(5)
    outcome = f"live/outcomes/{handle.id}"
    refused = refuse(world, monkeypatch, lambda writes: outcome in writes)
    # When it finishes
    world.release.set()
    # Then the cloud tries the completion and the InvalidResult failure once each, then drops
    # it: the record is failed with the reason and the inbox entry is gone
    wait_until(lambda: world.get(f"jobs/{handle.id}/state") == "failed", 5, what="dropped")
    assert len(refused) == 2
    assert "refused every form" in world.get(f"jobs/{handle.id}/error/message")
    assert world.get(f"live/inbox/{world.cloud.id}/{handle.id}") is None
    with pytest.raises(JobTimeout):  # nothing could answer the caller
        handle.get(timeout=0.2)
    assert world.app.tasks["echo"].delay(1).get(timeout=5)["data"] == 1


def test_an_unreachable_database_is_retried_for_patience_then_the_job_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World()
    world.replace_cloud(name="impatient", grace=5.0, patience=0.5)
    try:
        handle = world.app.tasks["slow"].delay("again")
        assert world.started.wait(5)
        world.started.clear()
        # Given a database that drops every stream and fails every write
        world.db.disconnect()
        world.db.fail_writes = True
        # When the job finishes, the completion is retried for the cloud's patience only
        with caplog.at_level(logging.ERROR, logger="atmosphere.worker.cloud"):
            world.release.set()
            wait_until(lambda: "was not written" in caplog.text, 10, what="the cloud gave up")
        # Then, the database back, the resynced inbox still holds the job: it runs again
        world.db.fail_writes = False
        world.db.reconnect()
        assert world.started.wait(5)
        assert handle.get(timeout=5) == "again"
        assert world.get(f"jobs/{handle.id}/state") == "succeeded"
    finally:
        world.close()


def test_a_completion_that_cannot_be_built_fails_its_job_and_the_next_job_still_runs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atmosphere.worker import completions

    # Given a prefetching cloud running a job, with the next one waiting behind it
    world.replace_cloud(name="prefetching", prefetch=1, grace=5.0)
    slow = world.app.tasks["slow"].delay("first")
    assert world.started.wait(5)
    waiting = world.app.tasks["echo"].delay("second")
    wait_until(lambda: world.get(f"live/inbox/{world.cloud.id}/{waiting.id}"), 5, what="held")
    # and a bug that makes building the first job's completion raise, once
    build = completion_writes
    broken: list[bool] = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        if kwargs["spec"].id == slow.id and not broken:
            broken.append(True)
            raise RuntimeError("a bug building the completion")
        return build(*args, **kwargs)

    monkeypatch.setattr(completions, "completion_writes", failing_once)
    # When the first job finishes
    world.release.set()
    # Then it fails with InvalidResult, answered once, and the job waiting behind it still runs
    # on the thread that claimed it (before, that thread died with the error, and the job
    # claimed into the freed slot never started)
    with pytest.raises(InvalidResult, match="a bug building the completion"):
        slow.get(timeout=5)
    assert waiting.get(timeout=5)["data"] == "second"
    assert broken == [True]
    wait_until(lambda: world.cloud.unwritten == 0, 5, what="every completion accounted for")
