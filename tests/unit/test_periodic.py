"""Fire-time arithmetic: cron fields, weekdays, time zones and DST, intervals, bounded search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.triggers import (
    CronSchedule,
    EverySchedule,
    crontab_weekdays,
    fire_times_between,
    make_trigger,
    whole_ms,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def walk(trigger: CronSchedule | EverySchedule, start: datetime, n: int) -> list[datetime]:
    out, cursor = [], start
    for _ in range(n):
        nxt = trigger.next_after(cursor)
        assert nxt is not None
        out.append(nxt)
        cursor = nxt
    return out


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("fri-sun", "sun,fri,sat"),
        ("0-7", "sun,mon,tue,wed,thu,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1/2", "mon,wed,fri"),
        ("sat,sun", "sun,sat"),
    ],
)
def test_crontab_weekdays_are_sunday_based(field: str, expected: str) -> None:
    assert crontab_weekdays(field) == expected


@pytest.mark.parametrize("field", ["8", "mon-", "x", "5-1", "*/0", "monday"])
def test_bad_weekday_fields_are_rejected(field: str) -> None:
    with pytest.raises(ValueError):
        crontab_weekdays(field)


def test_weekday_one_is_monday_as_in_crontab() -> None:
    trigger = CronSchedule("0 9 * * 1")
    fire = trigger.next_after(utc(2026, 11, 28, 12))  # a Saturday
    assert fire == utc(2026, 11, 30, 9)
    assert fire.strftime("%A") == "Monday"


def test_nightly_in_berlin_fires_at_local_three() -> None:
    trigger = CronSchedule("0 3 * * *", "Europe/Berlin")
    winter, summer = walk(trigger, utc(2026, 1, 10), 1)[0], walk(trigger, utc(2026, 7, 10), 1)[0]
    assert winter == utc(2026, 1, 10, 2)  # CET = UTC+1
    assert summer == utc(2026, 7, 10, 1)  # CEST = UTC+2


def test_spring_forward_gap_fires_after_the_jump_once() -> None:
    # 2026-03-29 Berlin jumps 02:00 -> 03:00: 02:30 does not exist that day.
    trigger = CronSchedule("30 2 * * *", "Europe/Berlin")
    fires = walk(trigger, utc(2026, 3, 27, 12), 3)
    assert fires == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert fires[1].astimezone(trigger.tz).strftime("%H:%M") == "03:30"


def test_fall_back_repeated_time_fires_once_and_never_goes_backwards() -> None:
    # 2026-10-25 Berlin repeats 02:00-03:00. APScheduler 3.x alone loops here.
    trigger = CronSchedule("30 2 * * *", "Europe/Berlin")
    fires = walk(trigger, utc(2026, 10, 23, 12), 3)
    assert fires == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_every_twenty_minutes_across_fall_back_is_strictly_increasing() -> None:
    trigger = CronSchedule("*/20 * * * *", "Europe/Berlin")
    fires = walk(trigger, utc(2026, 10, 24, 23, 50), 8)
    assert fires == sorted(set(fires))
    # the repeated hour's wall-clock times fire once, at their first occurrence
    assert utc(2026, 10, 25, 0, 40) in fires and utc(2026, 10, 25, 1, 40) not in fires
    assert fires[3] == utc(2026, 10, 25, 2, 0)  # 03:00 CET


def test_every_fires_on_a_fixed_grid_from_start() -> None:
    start = utc(2026, 1, 1, 0, 0, 10).timestamp()
    trigger = EverySchedule(60, start)
    assert walk(trigger, utc(2026, 1, 1, 0, 5), 2) == [
        utc(2026, 1, 1, 0, 5, 10),
        utc(2026, 1, 1, 0, 6, 10),
    ]
    # strictly after: a fire time itself is not returned again
    assert trigger.next_after(utc(2026, 1, 1, 0, 5, 10)) == utc(2026, 1, 1, 0, 6, 10)


def test_every_default_grid_is_aligned_to_the_unix_epoch() -> None:
    assert EverySchedule(3600).next_after(utc(2026, 5, 5, 7, 59, 59)) == utc(2026, 5, 5, 8)


def test_fire_times_between_returns_the_latest_few_oldest_first() -> None:
    trigger = make_trigger(every=60)
    times = fire_times_between(trigger, utc(2020, 1, 1), utc(2026, 1, 1, 0, 3, 30), last=3)
    assert times == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 3)]


def test_fire_times_between_is_bounded_by_after_and_until() -> None:
    trigger = make_trigger(every=60)
    times = fire_times_between(trigger, utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 3), last=10)
    assert times == [utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 3)]
    assert fire_times_between(trigger, utc(2026, 1, 1), utc(2026, 1, 1), last=5) == []


def test_a_cron_that_never_matches_ends_the_search() -> None:
    trigger = make_trigger(cron="0 0 30 2 *")  # February 30th
    assert trigger.next_after(utc(2026, 1, 1)) is None
    assert fire_times_between(trigger, utc(2000, 1, 1), utc(2026, 1, 1), last=3) == []


@freeze_time("2026-11-28 04:00:00")
def test_next_fire_from_the_frozen_clock() -> None:
    now = datetime.now(UTC)
    trigger = make_trigger(cron="0 3 * * *", tz="Europe/Berlin")
    assert trigger.next_after(now) == utc(2026, 11, 29, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 3 * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "time zone"),
        ({"every": 0.5}, "at least 1 second"),
        ({}, "exactly one"),
        ({"cron": "* * * * *", "every": 5}, "exactly one"),
    ],
)
def test_bad_definitions_say_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_trigger(**kwargs)  # type: ignore[arg-type]


def test_whole_ms() -> None:
    when = utc(2026, 11, 28, 4, 5, 6) + timedelta(milliseconds=789)
    assert whole_ms(when) == when
    assert whole_ms(when + timedelta(microseconds=400)) == when


EXPRESSIONS = ["*/20 * * * *", "30 2 * * *", "0 3 * * 1-5", "15 1-4 * * *", "0 0 1 * *"]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=150, deadline=None)
@given(
    expr=st.sampled_from(EXPRESSIONS),
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_cron_fire_times_only_move_forward_and_match_the_wall_clock(
    expr: str, zone: str, start: datetime
) -> None:
    trigger = CronSchedule(expr, zone)
    minute_field = expr.split()[0]
    previous = start
    for fire in walk(trigger, start, 6):
        assert fire > previous
        local = fire.astimezone(trigger.tz)
        if minute_field.isdigit():
            # the minute matches, except a time pushed forward out of a DST gap (whole hours
            # or Lord Howe's half hour)
            assert local.minute in (int(minute_field), (int(minute_field) + 30) % 60)
        previous = fire
