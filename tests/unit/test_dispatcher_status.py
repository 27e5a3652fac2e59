"""``atmosphere status``: the pure summary of live/ and its rich rendering."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from atmosphere.cli.status import render
from atmosphere.overview import summarize
from atmosphere.station.views import cloud_rows, live_snapshot

NOW_MS = 1_800_000_000_000  # as stored
NOW = NOW_MS / 1000  # as Python passes it

LIVE: dict[str, Any] = {
    "clouds": {
        "c1": {
            "name": "billing",
            "types": {"sync": True},
            "slots": 2,
            "heartbeat": NOW_MS - 1500,
            "load": 0.5,
            "done": 7,
            "failed": 1,
        },
        "c2": {"types": {"mail": True}, "slots": 1, "heartbeat": NOW_MS - 60_000},
        "bad": "garbage",
    },
    "inbox": {"c1": {"j1": {}, "j2": {}}},
    "queue": {"sync": {"j3": {}}, "mail": {"j4": {}, "j5": {}}, "report": {"j6": {}}, "junk": 5},
    "delayed": {"j7": {}},
    "outcomes": {"j8": {}},
    "dispatchers": {"d1": {"host": "h", "pid": 42, "heartbeat": NOW_MS - 500, "leader": True}},
}


def test_summary_counts_and_flags_types_without_a_live_cloud() -> None:
    view = summarize(LIVE, NOW, dead_after=6.0)
    c1, c2 = view.clouds
    assert (c1.id, c1.held, c1.busy, c1.alive, c1.heartbeat_age) == ("c1", 2, True, True, 1.5)
    assert not c2.alive  # silent for a minute
    assert view.queues == {"mail": 2, "report": 1, "sync": 1}
    assert view.orphan_types == ["mail", "report"]
    assert (view.in_flight, view.settling, view.delayed) == (2, 1, 1)
    assert view.dispatchers[0].info.role == "leader"


def test_status_and_the_station_say_the_same_word_for_each_cloud() -> None:
    live = {
        "clouds": {
            "full": {"types": {"a": True}, "slots": 1, "heartbeat": NOW_MS - 1000},
            "room": {"types": {"a": True}, "slots": 2, "heartbeat": NOW_MS - 1000},
            "silent": {"types": {"a": True}, "slots": 1, "heartbeat": NOW_MS - 60_000},
            "unheard": {"types": {"a": True}, "slots": 1},
            "drain": {"types": {"a": True}, "state": "draining", "heartbeat": NOW_MS - 1000},
        },
        "inbox": {"full": {"j1": {}}, "room": {"j2": {}}},
    }
    status = {c.id: str(c.state) for c in summarize(live, NOW, 6.0).clouds}
    station = {r["id"]: r["state"] for r in cloud_rows(live["clouds"], live["inbox"], NOW, 6.0)}
    assert (
        status
        == station
        == {
            "full": "busy",
            "room": "idle",
            "silent": "dead",
            "unheard": "dead",
            "drain": "draining",
        }
    )


def test_summary_of_nothing_or_garbage_is_empty() -> None:
    for live in (None, "x", {"clouds": [1], "queue": "q"}):
        view = summarize(live, NOW, 6.0)
        assert view.clouds == [] and view.queues == {} and view.in_flight == 0


def test_render_shows_clouds_queues_and_the_no_cloud_warning() -> None:
    console = Console(record=True, width=140)
    render(summarize(LIVE, NOW, 6.0), console)
    text = console.export_text()
    assert "billing (c1)" in text and "busy" in text and "2/2" in text
    assert "no cloud for this type" in text
    assert "job(s) of type 'report' wait" in text
    assert "in flight: 2" in text and "delayed: 1" in text
    assert "leader" in text


def test_render_says_when_no_dispatcher_runs() -> None:
    console = Console(record=True, width=140)
    render(summarize({}, NOW, 6.0), console)
    assert "no dispatcher running" in console.export_text()


def test_status_and_the_station_show_the_same_summary_of_live() -> None:
    # Given one live/ tree, including a presence record older dispatchers wrote (leader: true)
    # and a garbled one, I expect both presenters to count and name the same things.
    live = {**LIVE, "dispatchers": {**LIVE["dispatchers"], "d2": {"role": "standby"}, "x": 3}}
    view = summarize(live, NOW, dead_after=6.0)
    snap = live_snapshot(live, NOW, 6.0)
    assert snap["queues"] == view.queues and snap["delayed"] == view.delayed
    assert (snap["assigned"], snap["chains"]) == (view.in_flight, view.chains)
    assert sorted(r["id"] for r in snap["clouds"]) == [c.id for c in view.clouds]
    shown = {d["id"]: (d["role"], d["heartbeat_age"]) for d in snap["leadership"]["dispatchers"]}
    assert shown == {"d1": ("leader", 0.5), "d2": ("standby", None)}
    assert shown == {d.id: (d.info.role, d.heartbeat_age) for d in view.dispatchers}
