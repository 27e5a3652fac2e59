"""Misfire policies, tick ids and the tick update (pure), and the Ticker over MemoryDatabase."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.scheduler.periodic import Periodic
from atmosphere.scheduler.ticks import (
    due_ticks,
    manual_run_id,
    tick_id,
    tick_update,
)
from atmosphere.schedules import Schedule, make_schedule, next_fire, store_schedule
from atmosphere.testing import MemoryDatabase

PATHS = Paths("atm")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def at(when: datetime) -> float:
    """A time as the records hold it: epoch seconds."""
    return when.timestamp()


def ms(when: datetime) -> int:
    """A time as the database stores it: epoch ms."""
    return round(when.timestamp() * 1000)


def minutely(misfire: str = "skip", **changes: Any) -> Schedule:
    schedule = make_schedule("tick", "noop", every=60, misfire=misfire, catch_up_max=3)
    return schedule.evolve(**changes)


# -- misfire policy ---------------------------------------------------------------------


def test_an_on_time_tick_is_due_once() -> None:
    s = minutely(last=at(utc(2026, 1, 1, 0, 0)))
    assert due_ticks(s, utc(2026, 1, 1, 0, 0, 59)) == []
    assert due_ticks(s, utc(2026, 1, 1, 0, 1, 0, 5000)) == [utc(2026, 1, 1, 0, 1)]
    # once fired (last moved), it is never due again
    fired = s.evolve(last=at(utc(2026, 1, 1, 0, 1)))
    assert due_ticks(fired, utc(2026, 1, 1, 0, 1, 30)) == []


@pytest.mark.parametrize(
    ("policy", "expected_minutes"),
    [
        ("skip", []),  # every missed tick is more than `grace` late
        ("run_once", [10]),  # once, for the latest
        ("catch_up", [8, 9, 10]),  # the latest catch_up_max, oldest first
    ],
)
def test_misfire_policies_after_an_outage(policy: str, expected_minutes: list[int]) -> None:
    s = minutely(policy, last=at(utc(2026, 1, 1, 0, 0)), grace=5)
    due = due_ticks(s, utc(2026, 1, 1, 0, 10, 30))  # ten ticks missed, the latest by 30 s
    assert [t.minute for t in due] == expected_minutes


def test_skip_still_fires_a_tick_within_grace() -> None:
    s = minutely("skip", last=at(utc(2026, 1, 1, 0, 0)), grace=5)
    assert due_ticks(s, utc(2026, 1, 1, 0, 3, 4)) == [utc(2026, 1, 1, 0, 3)]
    assert due_ticks(s, utc(2026, 1, 1, 0, 3, 6)) == []


def test_a_paused_schedule_has_nothing_due() -> None:
    s = minutely("catch_up", last=at(utc(2026, 1, 1)), paused=True)
    assert due_ticks(s, utc(2026, 1, 2)) == []
    assert next_fire(s, utc(2026, 1, 2)) is None


def test_a_new_schedule_starts_from_its_definition_time() -> None:
    s = minutely("catch_up", defined=at(utc(2026, 1, 1, 0, 0, 30)))
    assert due_ticks(s, utc(2026, 1, 1, 0, 2, 1)) == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)]


def test_a_changed_definition_does_not_catch_up_on_its_old_self() -> None:
    s = minutely("catch_up", last=at(utc(2026, 1, 1)), defined=at(utc(2026, 1, 1, 5)))
    assert due_ticks(s, utc(2026, 1, 1, 5, 0, 30)) == []
    assert next_fire(s, utc(2026, 1, 1, 5, 0, 30)) == utc(2026, 1, 1, 5, 1)


@freeze_time("2026-03-29 00:59:00")
def test_nightly_berlin_on_the_spring_forward_night() -> None:
    s = make_schedule("n", "noop", cron="30 2 * * *", tz="Europe/Berlin", misfire="skip")
    s = s.evolve(last=at(utc(2026, 3, 28, 1, 30)))
    now = datetime.now(UTC)
    assert next_fire(s, now) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert due_ticks(s, utc(2026, 3, 29, 1, 30, 1)) == [utc(2026, 3, 29, 1, 30)]


# -- ids and the update -----------------------------------------------------------------


def test_tick_ids_are_deterministic_ordered_and_distinct() -> None:
    a = tick_id("nightly", at(utc(2026, 1, 1)))
    assert a == tick_id("nightly", at(utc(2026, 1, 1)))
    assert a < tick_id("nightly", at(utc(2026, 1, 2)))
    assert a != tick_id("nightly-2", at(utc(2026, 1, 1)))
    assert manual_run_id("nightly", at(utc(2026, 1, 1))) != a
    assert len(a.split("@")[0]) == 8 and a.endswith("@nightly")


def test_tick_update_writes_job_queue_and_last_in_one_update() -> None:
    s = make_schedule(
        "sync", {"type": "syncUser", "name": "all", "data": {"x": 1}, "timeout": 5}, every=60
    )
    fire = at(utc(2026, 1, 1, 0, 1))
    job_id, update = tick_update(PATHS, s, fire, default_timeout=60)
    assert job_id == tick_id("sync", fire)
    assert set(update) == {
        f"atm/jobs/{job_id}",
        f"atm/live/queue/syncUser/{job_id}",
        "atm/live/schedules/sync/last",
        "atm/live/schedules/sync/last_job",
    }
    spec = JobSpec.from_json(update[f"atm/live/queue/syncUser/{job_id}"])
    assert (spec.id, spec.type, spec.name, spec.data, spec.timeout) == (
        job_id,
        "syncUser",
        "all",
        {"x": 1},
        5,
    )
    assert spec.reply_to is None  # fire-and-forget
    assert update[f"atm/jobs/{job_id}"]["state"] == "queued"
    assert update["atm/live/schedules/sync/last"] == ms(utc(2026, 1, 1, 0, 1))  # ms, as stored


def test_manual_run_clears_the_request_and_leaves_last_alone() -> None:
    s = minutely(run_now=123.0)
    job_id, update = tick_update(PATHS, s, 123.0, default_timeout=60, manual=True)
    assert job_id == manual_run_id("tick", 123.0)
    assert update["atm/live/schedules/tick/last_manual"] == 123_000
    assert update["atm/live/schedules/tick/run_now"] is None
    assert "atm/live/schedules/tick/last" not in update


# -- Periodic over the in-memory database -----------------------------------------------


def schedules_in(db: MemoryDatabase) -> dict[str, Any]:
    raw = db.get("atm/live/schedules")
    return raw if isinstance(raw, dict) else {}


def writer(db: MemoryDatabase) -> Callable[[dict[str, Any]], None]:
    return lambda values: db.update("", values)


def test_periodic_fires_each_tick_once() -> None:
    db = MemoryDatabase(clock=lambda: utc(2026, 1, 1, 0, 0, 30).timestamp())
    store_schedule(db, PATHS, minutely())
    periodic = Periodic(PATHS)
    now = utc(2026, 1, 1, 0, 1, 0, 1000)
    stale = schedules_in(db)  # as a mirror that has not seen our write yet
    nxt = periodic.run(stale, now, writer(db))
    periodic.run(stale, now, writer(db))  # again before the echo: still once
    periodic.run(schedules_in(db), now, writer(db))  # and after it
    fire = at(utc(2026, 1, 1, 0, 1))
    assert list(periodic.fired) == [tick_id("tick", fire)]
    assert db.get(f"atm/live/queue/noop/{tick_id('tick', fire)}")["type"] == "noop"
    assert db.get(f"atm/jobs/{tick_id('tick', fire)}")["state"] == "queued"
    assert db.get("atm/live/schedules/tick/last") == ms(utc(2026, 1, 1, 0, 1))
    assert nxt == utc(2026, 1, 1, 0, 2)


def test_a_new_leader_after_failover_does_not_refire() -> None:
    db = MemoryDatabase(clock=lambda: utc(2026, 1, 1, 0, 0, 30).timestamp())
    store_schedule(db, PATHS, minutely())
    first, second = Periodic(PATHS), Periodic(PATHS)
    now = utc(2026, 1, 1, 0, 1, 0, 1000)
    first.run(schedules_in(db), now, writer(db))
    second.run(schedules_in(db), now, writer(db))
    assert list(second.fired) == []
    second.run(schedules_in(db), utc(2026, 1, 1, 0, 2, 0, 1000), writer(db))
    assert list(second.fired) == [tick_id("tick", at(utc(2026, 1, 1, 0, 2)))]


def test_periodic_runs_a_manual_request_once_even_when_paused() -> None:
    db = MemoryDatabase(clock=lambda: utc(2026, 1, 1, 0, 0, 30).timestamp())
    store_schedule(db, PATHS, minutely())
    db.update("atm/live/schedules/tick", {"paused": True, "run_now": 5_000})
    periodic = Periodic(PATHS)
    stale = schedules_in(db)
    assert periodic.run(stale, utc(2026, 1, 1, 0, 5), writer(db)) is None  # paused: no timer
    periodic.run(stale, utc(2026, 1, 1, 0, 5), writer(db))
    assert list(periodic.fired) == [manual_run_id("tick", 5.0)]  # run_now 5000 ms, as stored
    assert db.get("atm/live/schedules/tick/run_now") is None
    assert db.get("atm/live/schedules/tick/last") is None


def test_periodic_skips_garbage_schedules() -> None:
    db = MemoryDatabase(clock=lambda: utc(2026, 1, 1, 0, 0, 30).timestamp())
    db.set("atm/live/schedules/bad", {"cron": "not a cron", "job": {"type": "x"}})
    db.set("atm/live/schedules/worse", 17)
    store_schedule(db, PATHS, minutely())
    periodic = Periodic(PATHS)
    periodic.run(schedules_in(db), utc(2026, 1, 1, 0, 1, 0, 1000), writer(db))
    assert list(periodic.fired) == [tick_id("tick", at(utc(2026, 1, 1, 0, 1)))]


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(["skip", "run_once", "catch_up"]),
    every=st.integers(1, 7200),
    last_offset=st.integers(0, 10**7),
    elapsed=st.integers(0, 10**6),
    grace=st.integers(0, 300),
)
def test_due_ticks_are_after_last_up_to_now_bounded_and_on_the_grid(
    policy: str, every: int, last_offset: int, elapsed: int, grace: int
) -> None:
    last = ms(utc(2026, 1, 1)) + last_offset * 1000
    s = make_schedule("p", "x", every=every, misfire=policy, catch_up_max=4, grace=grace)
    s = s.evolve(last=last / 1000)
    now = datetime.fromtimestamp((last + elapsed * 1000) / 1000, tz=UTC)
    due = [ms(t) for t in due_ticks(s, now)]
    assert due == sorted(set(due))
    assert all(last < t <= ms(now) and t % (every * 1000) == 0 for t in due)
    assert len(due) <= (4 if policy == "catch_up" else 1)
    if policy == "skip":
        assert all(ms(now) - t <= grace * 1000 for t in due)
    grid_ticks = ms(now) // (every * 1000) - last // (every * 1000)
    if policy != "skip" and grid_ticks > 0:
        assert due and due[-1] == (ms(now) // (every * 1000)) * every * 1000  # the latest
