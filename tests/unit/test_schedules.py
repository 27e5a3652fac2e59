"""Schedule records and the app-side API over the in-memory database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from atmosphere.errors import InvalidSchedule, NoSuchSchedule
from atmosphere.jobs import InvalidRecord
from atmosphere.paths import Paths
from atmosphere.schedules import (
    Misfire,
    Schedule,
    ScheduleBook,
    ScheduledJob,
    load_schedule,
    load_schedules,
    make_schedule,
    remove_schedule,
    request_run,
    set_paused,
    store_schedule,
    task_job,
)
from atmosphere.testing import MemoryDatabase

PATHS = Paths("atm")


def test_round_trip_through_json() -> None:
    s = make_schedule(
        "nightly-sync",
        {"type": "syncUser", "name": "all", "data": {"full": True}, "timeout": 30},
        cron="0 3 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        catch_up_max=4,
    ).evolve(paused=True, last=5.0, last_job="x", run_now=7.0, defined=3.25)
    raw = s.to_json()
    assert raw["cron"] == "0 3 * * *" and raw["tz"] == "Europe/Berlin" and "every" not in raw
    assert (raw["last"], raw["run_now"], raw["defined"]) == (5000, 7000, 3250)  # ms on the wire
    assert Schedule.from_json(raw, "nightly-sync") == s


def test_every_accepts_a_timedelta_and_describes_itself() -> None:
    s = make_schedule("beat", "ping", every=timedelta(minutes=5))
    assert s.every == 300 and s.job == ScheduledJob(type="ping")
    assert s.describe() == "every 5m"
    assert s.job_name == "beat"
    assert make_schedule("n", "x", cron="0 3 * * *", tz="Europe/Berlin").describe() == (
        "cron 0 3 * * * Europe/Berlin"
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("bad name", "x"), {"every": 5}, "name"),
        (("a.b", "x"), {"every": 5}, "name"),
        (("n", "x"), {"cron": "0 3 * *"}, "5 fields"),
        (("n", "x"), {"cron": "0 3 * * *", "tz": "Nowhere/Land"}, "time zone"),
        (("n", "x"), {"every": 0}, "at least 1 second"),
        (("n", "x"), {}, "exactly one"),
        (("n", "x"), {"every": 5, "misfire": "sometimes"}, "sometimes"),
        (("n", "x"), {"cron": "0 0 30 2 *"}, "never fires"),
        (("n", {"type": "a/b"}), {"every": 5}, "job type"),
        (("n", {"type": "x", "color": "red"}), {"every": 5}, "unknown job option"),
        (("n", {"type": "x", "data": {1, 2}}), {"every": 5}, "JSON"),
        (("n", {"type": "x", "timeout": -1}), {"every": 5}, "timeout"),
    ],
)
def test_invalid_definitions_are_refused_with_a_reason(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        make_schedule(*args, **kwargs)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        5,
        "x",
        {},
        {"job": {"type": "x"}},
        {"job": "x", "every": 5},
        {"job": {"type": "x"}, "every": 5, "misfire": "?"},
    ],
)
def test_garbage_records_raise_invalid_record(raw: Any) -> None:
    with pytest.raises(InvalidRecord):
        Schedule.from_json(raw, "n")


def test_store_keeps_operator_state_and_history() -> None:
    db = MemoryDatabase()
    s = make_schedule("beat", "ping", every=60)
    assert store_schedule(db, PATHS, s)
    defined = db.get("atm/live/schedules/beat/defined")
    assert isinstance(defined, int)
    db.update("atm/live/schedules/beat", {"paused": True, "last": 123, "last_job": "j"})
    # an app restart re-defines the same schedule: nothing changes
    assert not store_schedule(db, PATHS, s)
    stored = load_schedule(db, PATHS, "beat")
    assert (stored.paused, stored.last, stored.defined) == (True, 0.123, defined / 1000)
    # a real change moves `defined` and drops fields no longer set, keeping the rest
    assert store_schedule(db, PATHS, make_schedule("beat", "ping", cron="*/5 * * * *"))
    changed = load_schedule(db, PATHS, "beat")
    assert changed.every is None and changed.cron == "*/5 * * * *"
    assert changed.paused and changed.last == 0.123


def test_pause_resume_run_now_remove() -> None:
    db = MemoryDatabase()
    store_schedule(db, PATHS, make_schedule("beat", "ping", every=60))
    set_paused(db, PATHS, "beat", True)
    assert load_schedule(db, PATHS, "beat").paused
    set_paused(db, PATHS, "beat", False)
    assert not load_schedule(db, PATHS, "beat").paused
    request_run(db, PATHS, "beat")
    assert isinstance(load_schedule(db, PATHS, "beat").run_now, float)
    assert isinstance(db.get("atm/live/schedules/beat/run_now"), int)  # a server timestamp
    remove_schedule(db, PATHS, "beat")
    assert load_schedules(db, PATHS) == {}


@pytest.mark.parametrize("op", ["pause", "run", "remove", "load"])
def test_operations_on_unknown_schedules_raise(op: str) -> None:
    db = MemoryDatabase()
    with pytest.raises(NoSuchSchedule):
        if op == "pause":
            set_paused(db, PATHS, "ghost", True)
        elif op == "run":
            request_run(db, PATHS, "ghost")
        elif op == "remove":
            remove_schedule(db, PATHS, "ghost")
        else:
            load_schedule(db, PATHS, "ghost")
    assert db.get("atm/live/schedules") is None  # no junk record was created


def test_load_schedules_skips_garbage() -> None:
    db = MemoryDatabase()
    store_schedule(db, PATHS, make_schedule("good", "ping", every=60))
    db.set("atm/live/schedules/bad", {"cron": 17})
    assert list(load_schedules(db, PATHS)) == ["good"]


def test_misfire_defaults_to_skip() -> None:
    assert make_schedule("n", "x", every=60).misfire is Misfire.SKIP


class FakeTask:
    type = "syncAll"
    timeout = 30.0


def test_task_job_takes_type_and_timeout_from_the_task() -> None:
    assert task_job(FakeTask()) == ScheduledJob(type="syncAll", timeout=30.0)
    assert task_job(FakeTask(), data={"x": 1}, timeout=5) == ScheduledJob(
        type="syncAll", data={"x": 1}, timeout=5
    )
    with pytest.raises(InvalidSchedule, match="above @task"):
        task_job(lambda ticket, data: None)


def test_schedule_book_stores_once_and_refuses_conflicting_twins() -> None:
    db = MemoryDatabase()
    book = ScheduleBook()
    nightly = make_schedule("nightly", task_job(FakeTask()), cron="0 3 * * *", tz="Europe/Berlin")
    book.add(nightly)
    book.add(nightly)  # the same definition again (a module imported twice) is fine
    with pytest.raises(InvalidSchedule, match="defined twice"):
        book.add(make_schedule("nightly", "other", every=60))
    assert book.store_all(db, PATHS) == ["nightly"]
    assert book.store_all(db, PATHS) == []  # the next start changes nothing
    assert load_schedule(db, PATHS, "nightly").job.type == "syncAll"
