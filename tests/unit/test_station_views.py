"""View models of the live control plane (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere.overview import heartbeat_age, queue_depths
from atmosphere.station.live import HeartbeatClock
from atmosphere.station.views import (
    cloud_rows,
    cloud_summary,
    dispatcher_rows,
    in_flight,
    job_detail,
    job_row,
    live_snapshot,
    retry_spec,
    schedule_rows,
)

NOW = 1_800_000_000_000  # stored times are ms
NOW_S = NOW / 1000  # the views take the station's clock in seconds


def cloud(beat: int | None, types: tuple[str, ...] = ("a",), **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "n", "types": {t: True for t in types}, "slots": 1, **extra}
    if beat is not None:
        raw["heartbeat"] = beat
    return raw


@pytest.mark.parametrize(
    ("beat", "changed", "expected"),
    [
        (NOW_S - 2, None, 2.0),
        (NOW_S + 5, None, 0.0),  # a clock ahead of ours is never a negative age
        (NOW_S - 3_600, NOW_S - 1, 1.0),  # seen changing a second ago: alive under skew
        (None, None, None),  # never seen
    ],
)
def test_heartbeat_age(beat: float | None, changed: float | None, expected: float | None) -> None:
    assert heartbeat_age(beat, NOW_S, changed) == expected


def test_cloud_rows_mark_dead_busy_idle_and_current_job() -> None:
    clouds = {
        "dead": cloud(NOW - 10_000),
        "busy": cloud(NOW - 1_000, ("a", "b"), slots=2),
        "idle": cloud(NOW - 1_000),
        "drain": cloud(NOW - 1_000, state="draining"),
        "bad": {"name": "no types"},
    }
    inbox = {"busy": {"j2": {"type": "a", "name": "x"}, "j1": {"type": "b", "name": "y"}}}
    rows = {r["id"]: r for r in cloud_rows(clouds, inbox, NOW_S, dead_after=6.0)}
    assert set(rows) == {"dead", "busy", "idle", "drain"}  # the malformed one is skipped
    assert rows["dead"]["dead"] and rows["dead"]["state"] == "dead"
    assert rows["busy"]["state"] == "busy" and rows["busy"]["held"] == 2
    assert [j["id"] for j in rows["busy"]["current"]] == ["j1", "j2"]
    assert rows["idle"]["state"] == "idle" and rows["drain"]["state"] == "draining"
    assert cloud_rows(clouds, inbox, NOW_S, 6.0)[0]["id"] == "dead"  # dead clouds sort first


def test_cloud_summary_counts_slots_of_live_clouds_only() -> None:
    clouds = {
        "d": cloud(NOW - 60_000, slots=4),
        "b": cloud(NOW, slots=2),
        "f": cloud(NOW),
        "i": cloud(NOW),
    }
    inbox: dict[str, Any] = {"b": {"j1": {}}, "f": {"j2": {}}}
    summary = cloud_summary(cloud_rows(clouds, inbox, NOW_S, 6.0))
    assert summary == {
        "total": 4,
        "up": 3,
        "dead": 1,
        "busy": 1,  # "f": its one slot held; "b" has a free slot, so routing may use it: idle
        "idle": 2,
        "draining": 0,
        "slots": 4,
        "slots_used": 2,
    }


def test_a_cloud_with_a_free_slot_is_idle_as_routing_sees_it() -> None:
    rows = cloud_rows({"c": cloud(NOW, slots=2)}, {"c": {"j": {}}}, NOW_S, 6.0)
    assert (rows[0]["state"], rows[0]["held"]) == ("idle", 1)


def test_heartbeat_clock_reports_only_changes_seen_after_the_first_snapshot() -> None:
    clock = HeartbeatClock()
    assert clock.observe({"c": {"heartbeat": 1}}, 100) == {}
    assert clock.observe({"c": {"heartbeat": 1}}, 200) == {}
    assert clock.observe({"c": {"heartbeat": 2}}, 300) == {"c": 300}
    assert clock.observe({"c": {"heartbeat": 2}}, 400) == {"c": 300}
    assert clock.observe({}, 500) == {}


def test_queue_depths_and_in_flight_newest_first() -> None:
    queue = {"a": {"-A1": {"type": "a", "name": "x"}, "-A3": {"type": "a"}}, "b": {"-A2": {}}}
    inbox = {"c1": {"-A4": {"type": "a", "name": "run"}}}
    delayed = {"-A0": {"type": "b", "eta": 5}}
    assert queue_depths(queue) == {"a": 2, "b": 1}
    rows = in_flight(queue, inbox, delayed)
    assert [r["id"] for r in rows] == ["-A4", "-A3", "-A2", "-A1", "-A0"]
    assert rows[0]["state"] == "assigned" and rows[0]["cloud"] == "c1"
    assert rows[2]["type"] == "b"  # taken from the queue key when the record lacks it
    assert rows[-1]["state"] == "delayed"


def test_schedule_next_fire_is_computed_when_not_stored() -> None:
    now = 1_795_840_000_000  # 2026-11-28 04:26:40 UTC
    rows = schedule_rows(
        {
            "nightly": {"cron": "0 3 * * *", "tz": "UTC", "job": {"type": "t"}},
            "often": {"every": 300, "job": {"type": "t"}, "last_job": "j9"},
            "broken": {"every": "soon", "job": {"type": "t"}},
            "stored": {"every": "soon", "job": {"type": "t"}, "next": 42},
        },
        now / 1000,
    )
    by_name = {r["name"]: r for r in rows}
    assert by_name["nightly"]["next"] == 1_795_921_200_000  # 2026-11-29 03:00 UTC
    assert by_name["nightly"]["describe"] == "cron 0 3 * * *"
    assert by_name["often"]["next"] == 1_795_840_200_000  # the next 5-minute grid point
    assert by_name["often"]["describe"] == "every 5m" and by_name["often"]["last_job"] == "j9"
    assert by_name["broken"]["next"] is None  # shown, never crashing the page
    assert by_name["stored"]["next"] == 42  # a stored next fire wins


def test_schedule_rows() -> None:
    raw = {
        "nightly": {
            "cron": "0 3 * * *",
            "tz": "UTC",
            "job": {"type": "t", "name": "n"},
            "paused": True,
            "next": 5,
            "last": 3,
        },
        "junk": 17,
    }
    rows = schedule_rows(raw)
    assert len(rows) == 1
    assert rows[0]["name"] == "nightly" and rows[0]["paused"] is True
    assert rows[0]["job"]["type"] == "t" and rows[0]["next"] == 5


@pytest.mark.parametrize(("expires", "leader"), [(NOW + 1_000, True), (NOW - 1, False)])
def test_dispatcher_rows_leader_needs_a_valid_lease(expires: int, leader: bool) -> None:
    out = dispatcher_rows(
        {"b": {"heartbeat": NOW - 500, "role": "standby"}, "a": {"heartbeat": NOW}},
        {"owner": "a", "epoch": 3, "expires": expires},
        NOW_S,
    )
    assert out["lease"]["valid"] is leader
    assert [d["leader"] for d in out["dispatchers"]] == (
        [True, False] if leader else [False, False]
    )
    ages = {d["id"]: d["heartbeat_age"] for d in out["dispatchers"]}
    assert ages == {"a": 0.0, "b": 0.5}


def test_live_snapshot_of_an_empty_database() -> None:
    snap = live_snapshot(None, NOW_S, 6.0)
    assert snap["clouds"] == [] and snap["queued"] == 0 and snap["schedules"] == []
    assert snap["leadership"]["lease"]["valid"] is False


def test_job_row_and_detail() -> None:
    raw = {
        "type": "t",
        "name": "n",
        "state": "failed",
        "submitted": 1_000,
        "started": 1_500,
        "finished": 3_000,
        "error": {"message": "bad"},
        "attempts": 2,
        "chain": {"id": "C", "step": 1},
        "outcomes": {"1": {"attempt": 1}},
    }
    row = job_row("j", raw)
    assert row["duration"] == 1.5 and row["latency"] == 2.0 and row["error"] == "bad"
    detail = job_detail("j", raw, {"step": 1})
    assert detail["actions"] == ["retry", "discard"]
    assert detail["live_chain"] == {"step": 1}
    assert detail["outcomes"] == [{"attempt": 1}]
    assert job_detail("j", {**raw, "state": "succeeded"})["actions"] == []


def test_retry_spec_is_a_fresh_first_attempt() -> None:
    raw = {
        "type": "t",
        "name": "n",
        "data": {"x": 1},
        "attempt": 3,
        "assigned": 9,
        "epoch": 2,
        "timeout": 5,
        "reply_to": "m1",
        "state": "failed",
        "error": {"message": "x"},
        "deaths": 3,
    }
    spec = retry_spec("j", raw)
    assert spec["attempt"] == 1 and spec["id"] == "j" and spec["reply_to"] == "m1"
    assert "assigned" not in spec and "epoch" not in spec and "state" not in spec
    assert "deaths" not in spec  # a CloudDied dead letter retried gets max_deaths again
    assert "error" not in spec
