"""Misfire policies, tick ids and the tick update (pure), and the Ticker over MemoryDatabase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time

from atmosphere.db.mirror import Mirror
from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.scheduler.periodic import to_ms
from atmosphere.scheduler.ticker import Ticker
from atmosphere.scheduler.ticks import (
    due_ticks,
    manual_run_id,
    next_fire,
    tick_id,
    tick_update,
)
from atmosphere.schedules import Schedule, make_schedule, store_schedule
from atmosphere.testing import MemoryDatabase

PATHS = Paths("atm")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def minutely(misfire: str = "skip", **changes: Any) -> Schedule:
    schedule = make_schedule("tick", "noop", every=60, misfire=misfire, catch_up_max=3)
    return schedule.evolve(**changes)


# -- misfire policy ---------------------------------------------------------------------


def test_an_on_time_tick_is_due_once() -> None:
    s = minutely(last=to_ms(utc(2026, 1, 1, 0, 0)))
    assert due_ticks(s, utc(2026, 1, 1, 0, 0, 59)) == []
    assert due_ticks(s, utc(2026, 1, 1, 0, 1, 0, 5000)) == [utc(2026, 1, 1, 0, 1)]
    # once fired (last moved), it is never due again
    fired = s.evolve(last=to_ms(utc(2026, 1, 1, 0, 1)))
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
    s = minutely(policy, last=to_ms(utc(2026, 1, 1, 0, 0)), grace=5)
    due = due_ticks(s, utc(2026, 1, 1, 0, 10, 30))  # ten ticks missed, the latest by 30 s
    assert [t.minute for t in due] == expected_minutes


def test_skip_still_fires_a_tick_within_grace() -> None:
    s = minutely("skip", last=to_ms(utc(2026, 1, 1, 0, 0)), grace=5)
    assert due_ticks(s, utc(2026, 1, 1, 0, 3, 4)) == [utc(2026, 1, 1, 0, 3)]
    assert due_ticks(s, utc(2026, 1, 1, 0, 3, 6)) == []


def test_a_paused_schedule_has_nothing_due() -> None:
    s = minutely("catch_up", last=to_ms(utc(2026, 1, 1)), paused=True)
    assert due_ticks(s, utc(2026, 1, 2)) == []
    assert next_fire(s, utc(2026, 1, 2)) is None


def test_a_new_schedule_starts_from_its_definition_time() -> None:
    s = minutely("catch_up", defined=to_ms(utc(2026, 1, 1, 0, 0, 30)))
    assert due_ticks(s, utc(2026, 1, 1, 0, 2, 1)) == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)]


def test_a_changed_definition_does_not_catch_up_on_its_old_self() -> None:
    s = minutely("catch_up", last=to_ms(utc(2026, 1, 1)), defined=to_ms(utc(2026, 1, 1, 5)))
    assert due_ticks(s, utc(2026, 1, 1, 5, 0, 30)) == []
    assert next_fire(s, utc(2026, 1, 1, 5, 0, 30)) == utc(2026, 1, 1, 5, 1)


@freeze_time("2026-03-29 00:59:00")
def test_nightly_berlin_on_the_spring_forward_night() -> None:
    s = make_schedule("n", "noop", cron="30 2 * * *", tz="Europe/Berlin", misfire="skip")
    s = s.evolve(last=to_ms(utc(2026, 3, 28, 1, 30)))
    now = datetime.now(UTC)
    assert next_fire(s, now) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert due_ticks(s, utc(2026, 3, 29, 1, 30, 1)) == [utc(2026, 3, 29, 1, 30)]


# -- ids and the update -----------------------------------------------------------------


def test_tick_ids_are_deterministic_ordered_and_distinct() -> None:
    a = tick_id("nightly", to_ms(utc(2026, 1, 1)))
    assert a == tick_id("nightly", to_ms(utc(2026, 1, 1)))
    assert a < tick_id("nightly", to_ms(utc(2026, 1, 2)))
    assert a != tick_id("nightly-2", to_ms(utc(2026, 1, 1)))
    assert manual_run_id("nightly", to_ms(utc(2026, 1, 1))) != a
    assert len(a.split("@")[0]) == 8 and a.endswith("@nightly")


def test_tick_update_writes_job_queue_and_last_in_one_update() -> None:
    s = make_schedule(
        "sync", {"type": "syncUser", "name": "all", "data": {"x": 1}, "timeout": 5}, every=60
    )
    fire = to_ms(utc(2026, 1, 1, 0, 1))
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
    assert update["atm/live/schedules/sync/last"] == fire


def test_manual_run_clears_the_request_and_leaves_last_alone() -> None:
    s = minutely(run_now=123_000)
    job_id, update = tick_update(PATHS, s, 123_000, default_timeout=60, manual=True)
    assert job_id == manual_run_id("tick", 123_000)
    assert update["atm/live/schedules/tick/run_now"] is None
    assert "atm/live/schedules/tick/last" not in update


# -- the Ticker over the in-memory database ---------------------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now.timestamp()


def ticker_for(db: MemoryDatabase, epoch: list[int | None], clock: Clock) -> Ticker:
    ticker = Ticker(db, PATHS, fence=lambda: epoch[0], clock=clock)
    ticker._mirror = Mirror(db, PATHS.schedules())
    assert ticker._mirror.wait_synced(5)
    return ticker


def test_ticker_fires_each_tick_once_and_only_while_leading() -> None:
    clock = Clock(utc(2026, 1, 1, 0, 0, 30))
    db = MemoryDatabase(clock=clock)
    store_schedule(db, PATHS, minutely())
    epoch: list[int | None] = [None]
    ticker = ticker_for(db, epoch, clock)
    db.drain()
    try:
        clock.now = utc(2026, 1, 1, 0, 1, 0, 1000)
        ticker.step(clock.now)
        assert ticker.fired == []  # a standby never fires
        epoch[0] = 1
        wait = ticker.step(clock.now)
        ticker.step(clock.now)  # again before the stream echoed `last`: still once
        fire = to_ms(utc(2026, 1, 1, 0, 1))
        assert ticker.fired == [tick_id("tick", fire)]
        assert db.get(f"atm/live/queue/noop/{tick_id('tick', fire)}")["type"] == "noop"
        assert db.get("atm/live/schedules/tick/last") == fire
        assert 58 < wait <= 60
    finally:
        assert ticker._mirror is not None
        ticker._mirror.close()


def test_a_second_ticker_after_failover_does_not_refire() -> None:
    clock = Clock(utc(2026, 1, 1, 0, 0, 30))
    db = MemoryDatabase(clock=clock)
    store_schedule(db, PATHS, minutely())
    first = ticker_for(db, [1], clock)
    clock.now = utc(2026, 1, 1, 0, 1, 0, 1000)
    first.step(clock.now)
    db.drain()
    second = ticker_for(db, [2], clock)
    try:
        second.step(clock.now)
        assert second.fired == []
        clock.now = utc(2026, 1, 1, 0, 2, 0, 1000)
        second.step(clock.now)
        assert second.fired == [tick_id("tick", to_ms(utc(2026, 1, 1, 0, 2)))]
    finally:
        for t in (first, second):
            assert t._mirror is not None
            t._mirror.close()


def test_ticker_runs_a_manual_request_once() -> None:
    clock = Clock(utc(2026, 1, 1, 0, 0, 30))
    db = MemoryDatabase(clock=clock)
    store_schedule(db, PATHS, minutely(paused=False))
    db.update("atm/live/schedules/tick", {"paused": True, "run_now": 5_000})
    ticker = ticker_for(db, [1], clock)
    try:
        ticker.step(clock.now)
        ticker.step(clock.now)
        assert ticker.fired == [manual_run_id("tick", 5_000)]  # paused, yet run on request
        db.drain()
        assert db.get("atm/live/schedules/tick/run_now") is None
    finally:
        assert ticker._mirror is not None
        ticker._mirror.close()


def test_ticker_skips_garbage_schedules() -> None:
    clock = Clock(utc(2026, 1, 1, 0, 0, 30))
    db = MemoryDatabase(clock=clock)
    db.set("atm/live/schedules/bad", {"cron": "not a cron", "job": {"type": "x"}})
    db.set("atm/live/schedules/worse", 17)
    store_schedule(db, PATHS, minutely())
    ticker = ticker_for(db, [1], clock)
    try:
        clock.now = utc(2026, 1, 1, 0, 1, 0, 1000)
        ticker.step(clock.now)
        assert ticker.fired == [tick_id("tick", to_ms(utc(2026, 1, 1, 0, 1)))]
    finally:
        assert ticker._mirror is not None
        ticker._mirror.close()
