"""Small dispatcher parts: analytics buffer, retention decisions, the write overlay, assignment plan."""

from __future__ import annotations

import pytest

from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.scheduler.analytics import MinuteStats
from atmosphere.scheduler.assigning import plan
from atmosphere.scheduler.moves import assign_writes, assignment
from atmosphere.scheduler.overlay import Overlay, net, resolve
from atmosphere.scheduler.retention import expired_job_writes
from atmosphere.scheduler.routing import CloudLoad
from atmosphere.scheduler.state import Change
from atmosphere.stats import minute_key

P = Paths("atmosphere")
AT = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def test_minute_stats_become_increments_and_a_growing_peak() -> None:
    stats = MinuteStats()
    stats.count(AT, "t", "succeeded")
    stats.count(AT + 1, "t", "succeeded")
    stats.latency(AT, "t", 0.003)
    stats.queue_depth(AT, "t", 5)
    stats.queue_depth(AT, "t", 2)
    writes = stats.writes(P)
    base = "atmosphere/stats/202701150800/t"
    assert writes[f"{base}/succeeded"] == {".sv": {"increment": 2}}
    assert writes[f"{base}/latency/b2"] == {".sv": {"increment": 1}}
    assert writes[f"{base}/queue"] == 5
    stats.queue_depth(AT, "t", 4)  # lower than the peak already written: nothing to write
    assert stats.writes(P) == {}


@pytest.mark.parametrize("step", [59.999, 60.0, -0.5, 3600.25, -60.0])
def test_minute_stats_count_each_figure_in_its_own_minute(step: float) -> None:
    stats = MinuteStats()  # the minute's key is kept between figures: never a stale one
    stats.count(AT + 59.5, "t", "succeeded")
    stats.count(AT + step, "t", "failed")
    stats.queue_depth(AT + step, "t", 3)
    stats.count(AT + 59.5, "t", "retried")
    expected = {
        f"atmosphere/stats/{minute_key(AT + 59.5)}/t/succeeded": {".sv": {"increment": 1}},
        f"atmosphere/stats/{minute_key(AT + step)}/t/failed": {".sv": {"increment": 1}},
        f"atmosphere/stats/{minute_key(AT + step)}/t/queue": 3,
        f"atmosphere/stats/{minute_key(AT + 59.5)}/t/retried": {".sv": {"increment": 1}},
    }
    assert stats.writes(P) == expected


def test_retention_deletes_finished_records_and_their_replies_only() -> None:
    records = {
        "a": {"state": "succeeded", "reply_to": "m"},
        "b": {"state": "retrying"},
        "c": {"state": "failed", "chain": {"id": "ch", "step": 1}, "chain_reply_to": "m2"},
        "d": "garbage",
    }
    assert expired_job_writes(P, records) == {
        "atmosphere/jobs/a": None,
        "atmosphere/replies/m/a": None,
        "atmosphere/jobs/c": None,
        "atmosphere/replies/m2/ch": None,
    }


def test_overlay_replays_until_its_marker_comes_back() -> None:
    overlay = Overlay(run="r")
    overlay.record("queue/t/j", None)
    assert overlay.needs_marker and overlay.next_marker() == "r:1"
    overlay.flushed(True)
    overlay.record("inbox/c/j", {"id": "j"})
    overlay.flushed(True)
    assert list(overlay.replay()) == [("queue/t/j", None), ("inbox/c/j", {"id": "j"})]
    overlay.confirm("someone-else:9")
    overlay.confirm("r:1")
    assert list(overlay.replay()) == [("inbox/c/j", {"id": "j"})]
    overlay.confirm("r:2")
    assert not overlay
    overlay.record("x", 1)
    overlay.flushed(False)
    assert not overlay and not overlay.needs_marker


def test_overlay_is_outlived_by_the_leadership_that_wrote_it() -> None:
    overlay = Overlay(run="r")
    assert not overlay.outlived(False, 0)  # nothing pending: nothing to drop
    overlay.record("inbox/c/j", {"id": "j"})
    overlay.flushed(True, epoch=3)
    assert not overlay.outlived(True, 3)
    assert overlay.outlived(False, 3)  # deposed: our marker may be deleted with our record
    assert overlay.outlived(True, 4)  # leading again: what was pending predates a new leader
    overlay.confirm("r:1")
    assert not overlay.outlived(False, 4)


def test_net_keeps_one_change_per_record_and_drops_round_trips() -> None:
    changes = [
        Change("queue", ("t", "j"), "A", None),
        Change("queue", ("t", "j"), None, "A"),
        Change("inbox", ("c", "j"), None, "B"),
        Change("inbox", ("c", "j"), "B", "C"),
    ]
    assert net(changes) == [Change("inbox", ("c", "j"), None, "C")]


def test_resolve_turns_server_timestamps_into_our_clock() -> None:
    assert resolve({"a": {".sv": "timestamp"}, "b": [1]}, 42) == {"a": 42, "b": [1]}


def test_plan_takes_oldest_first_across_types_and_never_overfills() -> None:
    queue = {
        "a": {
            "j3": JobSpec(id="j3", type="a", name="n"),
            "j1": JobSpec(id="j1", type="a", name="n"),
        },
        "b": {"j2": JobSpec(id="j2", type="b", name="n")},
    }
    loads = {"c": CloudLoad(id="c", types=frozenset({"a", "b"}), slots=2)}
    assert [(s.id, c) for s, c in plan(queue, loads)] == [("j1", "c"), ("j2", "c")]
    assert loads["c"].held == 2


QUEUED = [
    {"id": "j1", "type": "t", "name": "n", "data_json": "[1, 2.5, null]", "submitted": 1},
    {
        "type": "t",
        "data_json": '{"a": {"b": [true]}}',
        "timeout": 0,
        "retries": 0,
        "retry_backoff": 5,
        "retry_backoff_max": 7,
        "eta": 1_800_000_000_123,
        "deaths": 2,
    },
    {
        "type": "t",
        "name": "",
        "retries": 3,
        "retry_backoff": 0.5,
        "attempt": 2,
        "chain": {"id": "c", "step": 1},
        "parent": "p",
        "reply_to": "m",
        "epoch": 4,
    },
]


@pytest.mark.parametrize("raw", QUEUED)
@pytest.mark.parametrize("queue_type", ["t", "other"])
def test_an_assignment_is_what_its_inbox_entry_parses_to(
    raw: dict[str, object], queue_type: str
) -> None:
    """The dispatcher takes its inbox entry's typed value without parsing it: it must be exact,
    whether the entry copies the queue entry or (stored under another type's queue, so parsed
    with that type) is written from the spec."""
    spec = JobSpec.from_json(raw, job_id="j1").evolve(type=queue_type)
    assigned, entry = assignment(spec, raw, 3, 1_800_000_000_456)
    written = assign_writes(P, spec, entry, "c1")[P.inbox("c1", "j1")]
    assert JobSpec.from_json(written, job_id="j1") == assigned
    assert written["assigned"] == 1_800_000_000_456 and written["epoch"] == 3
    assert "eta" not in written and assigned.chain == spec.chain
    assert written["type"] == queue_type and assigned.type == queue_type
    if queue_type == "t":
        assert written.get("data_json") == raw.get("data_json")  # copied, not encoded again
