"""Submitting writes exactly ONE multi-path update per job or chain, with the protocol's paths."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

import pytest

from atmosphere import (
    Atmosphere,
    AtmosphereError,
    DatabaseError,
    Handle,
    InvalidJob,
    chain,
)
from atmosphere._running import RunningJob, current_job
from atmosphere.errors import SubmitFailed
from atmosphere.jobs import ChainState, JobSpec, payload
from tests.unit.jobs_fakes import QUIET, RecordingDatabase


@pytest.fixture
def db() -> RecordingDatabase:
    return RecordingDatabase()


@pytest.fixture
def app(db: RecordingDatabase) -> Atmosphere:
    app = Atmosphere("t", settings=QUIET, database=db)

    @app.task("syncUser", timeout=30, retries=2, retry_backoff=0.5)
    def sync_user(ticket: Any, data: Any) -> Any:
        return data

    @app.task("mail")
    def mail(ticket: Any, data: Any) -> Any:
        return data

    return app


def test_delay_writes_one_update_with_record_and_queue_entry(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    handle = app.tasks["syncUser"].submit(name="user1", data={"a": 1})
    app.maker.flush()  # delay() returns before the outbox writes
    assert len(db.updates) == 1
    path, values = db.updates[0]
    assert path == "atmosphere"
    assert set(values) == {f"jobs/{handle.id}", f"live/queue/syncUser/{handle.id}"}
    record = db.get(f"atmosphere/jobs/{handle.id}")
    entry = db.get(f"atmosphere/live/queue/syncUser/{handle.id}")
    assert record["state"] == "queued"
    spec = JobSpec.from_json(entry, handle.id)
    assert (spec.type, spec.name, spec.data, spec.timeout) == ("syncUser", "user1", {"a": 1}, 30)
    assert spec.reply_to == app.maker.id
    assert (spec.retries, spec.retry_backoff) == (2, 0.5)
    assert isinstance(entry["submitted"], int) and entry["submitted"] > 0
    assert handle.ticket == {"type": "syncUser", "name": "user1", "id": handle.id}
    assert not handle.done()


def test_ids_are_chronological(app: Atmosphere) -> None:
    ids = [app.tasks["mail"].delay(i).id for i in range(20)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


def test_name_defaults_to_the_id_and_timeout_to_the_settings(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    handle = app.tasks["mail"].delay("x")
    app.maker.flush()  # delay() returns before the outbox writes
    entry = db.get(f"atmosphere/live/queue/mail/{handle.id}")
    assert entry["name"] == handle.id
    assert entry["timeout"] == QUIET.default_timeout


def test_original_form_without_callback_is_fire_and_forget(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    handle = app.submit({"type": "mail", "name": "n", "data": {"to": "x"}, "timeout": 5})
    app.maker.flush()  # delay() returns before the outbox writes
    entry = db.get(f"atmosphere/live/queue/mail/{handle.id}")
    assert "reply_to" not in entry
    assert not handle.tracked
    with pytest.raises(AtmosphereError, match="fire-and-forget"):
        handle.get()
    assert app.maker.pending == 0
    assert db._listeners == []  # no reply stream for fire-and-forget


def test_task_submit_forget(app: Atmosphere, db: RecordingDatabase) -> None:
    handle = app.tasks["mail"].submit(data=1, forget=True)
    app.maker.flush()  # delay() returns before the outbox writes
    assert "reply_to" not in db.get(f"atmosphere/live/queue/mail/{handle.id}")


def test_chain_writes_one_update_with_chain_state_and_first_step(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    sync, mail = app.tasks["syncUser"], app.tasks["mail"]
    handle = chain(
        sync.s({"p": 1}, name="c1"), mail.s({"q": 2}, callback=True), sync.s(None)
    ).submit()
    app.maker.flush()  # delay() returns before the outbox writes
    assert len(db.updates) == 1
    first = f"{handle.id}-0"
    assert set(db.updates[0][1]) == {
        f"live/chains/{handle.id}",
        f"jobs/{first}",
        f"live/queue/syncUser/{first}",
    }
    state = ChainState.from_json(db.get(f"atmosphere/live/chains/{handle.id}"), handle.id)
    assert [s.type for s in state.steps] == ["syncUser", "mail", "syncUser"]
    assert [s.callback for s in state.steps] == [False, True, False]
    assert state.name == "c1" and state.timeout == 30 and state.step == 0
    assert state.reply_to == app.maker.id
    spec = JobSpec.from_json(db.get(f"atmosphere/live/queue/syncUser/{first}"), first)
    assert spec.chain is not None and (spec.chain.id, spec.chain.step) == (handle.id, 0)
    assert spec.reply_to is None  # the dispatcher answers for a chain
    assert (spec.name, spec.data) == ("c1", {"p": 1})
    assert handle.ticket == {"type": "syncUser", "name": "c1", "id": handle.id}


def test_original_form_chain(app: Atmosphere, db: RecordingDatabase) -> None:
    got: list[Any] = []
    handle = app.submit(
        [
            {"type": "syncUser", "name": "job1", "data": {"param1": "x"}, "timeout": 5},
            {"type": "mail", "data": {"param2": "y"}},
        ],
        lambda error, data: got.append((error, data)),
    )
    app.maker.flush()  # delay() returns before the outbox writes
    state = db.get(f"atmosphere/live/chains/{handle.id}")
    assert state["timeout"] == 5 and state["name"] == "job1"
    assert state["steps"][1] == {"type": "mail", "data_json": '{"param2":"y"}'}


def test_a_list_of_one_job_is_a_plain_job(app: Atmosphere, db: RecordingDatabase) -> None:
    handle = app.submit([{"type": "mail", "data": 1}], lambda e, d: None)
    app.maker.flush()  # delay() returns before the outbox writes
    assert db.get(f"atmosphere/live/queue/mail/{handle.id}") is not None
    assert db.get("atmosphere/live/chains") is None


def test_countdown_goes_to_delayed_with_an_eta(app: Atmosphere, db: RecordingDatabase) -> None:
    before = time.time()
    handle = app.tasks["mail"].submit(data=1, countdown=60)
    app.maker.flush()  # delay() returns before the outbox writes
    entry = db.get(f"atmosphere/live/delayed/{handle.id}")
    assert entry is not None and db.get("atmosphere/live/queue") is None
    assert int(before * 1000) + 60_000 <= entry["eta"] <= time.time() * 1000 + 60_000
    assert db.get(f"atmosphere/jobs/{handle.id}/state") == "delayed"
    assert len(db.updates) == 1


def test_eta_as_unix_seconds(app: Atmosphere, db: RecordingDatabase) -> None:
    handle = app.submit({"type": "mail", "eta": 2_000_000_000.5})
    app.maker.flush()  # delay() returns before the outbox writes
    assert db.get(f"atmosphere/live/delayed/{handle.id}/eta") == 2_000_000_000_500


def test_a_job_submitted_inside_a_handler_names_its_parent(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    @contextmanager
    def no_lend() -> Any:
        yield

    token = current_job.set(RunningJob("parent-1", no_lend))
    try:
        handle: Handle = app.tasks["mail"].delay(1)
    finally:
        current_job.reset(token)
    app.maker.flush()  # delay() returns before the outbox writes
    assert db.get(f"atmosphere/live/queue/mail/{handle.id}/parent") == "parent-1"


def test_map_submits_many_jobs_in_one_update_per_batch(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    handles = app.tasks["mail"].map(range(1200))
    assert len(db.updates) == 3  # 500 jobs per update
    assert len(db.updates[0][1]) == 2 * 500
    assert [h.ticket["type"] for h in handles] == ["mail"] * 1200
    queue = db.get("atmosphere/live/queue/mail")
    assert [payload(queue[h.id], "data") for h in handles[:3]] == [0, 1, 2]
    assert all(queue[h.id]["reply_to"] == app.maker.id for h in handles)
    assert app.maker.pending == 1200


def test_map_checks_every_item_before_writing_any(app: Atmosphere, db: RecordingDatabase) -> None:
    with pytest.raises(InvalidJob, match="not JSON-serialisable"):
        app.tasks["mail"].map([1, 2, {3}])
    assert db.updates == [] and app.maker.pending == 0


def test_a_failed_write_fails_its_handle_and_tracks_nothing(
    app: Atmosphere, db: RecordingDatabase
) -> None:
    db.fail_writes = True
    handle = app.tasks["mail"].delay(1)
    with pytest.raises(SubmitFailed) as info:
        handle.get(timeout=5)
    assert isinstance(info.value, DatabaseError) and info.value.job_id == handle.id
    with pytest.raises(DatabaseError):
        app.tasks["mail"].map(range(3))
    assert app.maker.pending == 0


def test_a_chain_step_keeps_its_tasks_backoff_cap(app: Atmosphere, db: RecordingDatabase) -> None:
    # Given a task whose backoff is capped at 10 s, chained twice
    @app.task("capped", retries=3, retry_backoff=2.0, retry_backoff_max=10.0)
    def capped(ticket: Any, data: Any) -> Any:
        return data

    handle = chain(capped.s(1), capped).submit()
    app.maker.flush()  # delay() returns before the outbox writes
    # I expect the first step's job and the later step's record to keep the cap
    first = f"{handle.id}-0"
    spec = JobSpec.from_json(db.get(f"atmosphere/live/queue/capped/{first}"), first)
    assert (spec.retry_backoff, spec.retry_backoff_max) == (2.0, 10.0)
    state = ChainState.from_json(db.get(f"atmosphere/live/chains/{handle.id}"), handle.id)
    assert [s.retry_backoff_max for s in state.steps] == [10.0, 10.0]
