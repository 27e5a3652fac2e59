"""The chaos harness's judgement (chaos/checks.py, faults.plan, report): pure, from tables."""

from __future__ import annotations

import random
from typing import Any

import pytest

from atmosphere.errors import CloudDied, JobTimeout
from chaos import checks, watch
from chaos.backlog import rates_per_tenth, tenth
from chaos.faults import KINDS, plan
from chaos.fleet import leader_pid
from chaos.ledger import Answer, Execution, Fault, Sent, answer_from
from chaos.report import Row, failures, render


def test_lost_counts_missing_answers_timeouts_and_unproven_fire_and_forget() -> None:
    sent = [
        Sent("a", "rpc", 0.0),
        Sent("b", "rpc", 0.0),
        Sent("c", "rpc", 0.0),
        Sent("d", "chain_ff", 0.0, tracked=False, proof="d-2"),
        Sent("e", "chain_ff", 0.0, tracked=False, proof="e-2"),
    ]
    answers = {"a": Answer("a", 1.0, ok=True), "c": Answer("c", 1.0, ok=False, error="JobTimeout")}
    assert checks.lost(sent, answers, executed={"d-2"}) == ["b", "c", "e"]


def test_failed_counts_errors_but_not_timeouts() -> None:
    sent = [Sent("a", "rpc", 0.0), Sent("b", "rpc", 0.0)]
    answers = {
        "a": Answer("a", 1.0, ok=False, error="JobFailed", error_type="CloudDied", message="x"),
        "b": Answer("b", 1.0, ok=False, error="JobTimeout"),
    }
    assert checks.failed(sent, answers) == {"JobFailed(CloudDied): x": 1}


@pytest.mark.parametrize(
    ("waiting", "completions", "expected"),
    [
        ([], [1.0], (0.0, 0.0)),  # nothing waited: no stall
        ([(0.0, 10.0)], [2.0, 3.0], (7.0, 3.0)),  # the longest piece between completions
        ([(0.0, 1.0), (5.0, 6.0)], [], (1.0, 0.0)),  # idle between jobs is no stall
        ([(0.0, 4.0), (3.0, 9.0)], [4.0], (5.0, 4.0)),  # overlapping jobs merge
    ],
)
def test_longest_stall(
    waiting: list[tuple[float, float]], completions: list[float], expected: tuple[float, float]
) -> None:
    assert checks.longest_stall(waiting, completions) == expected


def test_recovery_is_the_time_to_the_next_completion_per_kind() -> None:
    faults = [Fault("kill_db", "db", 10.0, 12.0), Fault("kill_db", "db", 20.0, 22.0),
              Fault("kill_cloud", "c", 30.0, 31.0)]  # fmt: skip
    assert checks.recovery(faults, [9.0, 11.5, 23.0]) == {"kill_db": [1.5, 3.0]}
    assert checks.median_max([1.5, 3.0, 10.0]) == (3.0, 10.0)
    assert checks.median_max([]) == (0.0, 0.0)


def test_a_second_execution_is_explained_only_by_a_fault_around_it() -> None:
    runs = [Execution(10.0, "j1", "noop", 1), Execution(14.0, "j1", "noop", 2),
            Execution(50.0, "j2", "noop", 1), Execution(51.0, "j2", "noop", 2),
            Execution(60.0, "j3", "noop", 1)]  # fmt: skip
    faults = [Fault("freeze_cloud", "cloud0", 11.0, 13.5)]
    assert checks.executed_twice(runs, faults) == ({"j1": 2}, {"j2": 2})


def test_poison_must_be_answered_once_with_its_error() -> None:
    expect = {"poison_exit": checks.Expect("exit", error_type="CloudDied")}
    sent = [Sent(k, "poison_exit", 0.0) for k in ("p1", "p2", "p3", "p4")] + [Sent("x", "rpc", 0)]
    died = answer_from("p1", CloudDied("the cloud running it died 3 times", error_type="CloudDied"))
    answers = [
        died,
        Answer("p2", 1.0, ok=False, error="JobTimeout", message="no response"),
        Answer("p3", 1.0, ok=False, error="JobFailed", error_type="CloudDied"),
    ]
    result = checks.poison_results(sent, answers, {"p1": 1, "p3": 2}, expect)["poison_exit"]
    assert (result.sent, result.exactly_once, result.unanswered, result.rewritten) == (4, 2, 1, 1)
    assert result.wrong[0].startswith("JobTimeout")


def test_a_record_holding_another_runs_result_contradicts_the_response() -> None:
    sent = [Sent("a", "rpc", 0.0), Sent("c", "chain_cb", 0.0), Sent("b", "rpc", 0.0)]
    answers = {
        "a": Answer("a", 1.0, ok=True, mark="r1"),
        "b": Answer("b", 1.0, ok=True, mark="r2"),
        "c": Answer("c", 1.0, ok=True, mark="r3"),
    }
    records = {"a": {"result": {"run": "r1"}}, "b": {"result": {"run": "r9"}},
               "c-1": {"result": {"run": "r3"}}}  # fmt: skip
    assert checks.contradictions(sent, answers, records) == ["b"]


def test_a_contradiction_is_explained_by_its_record_runs_and_the_faults_around_them() -> None:
    sent = [Sent("b", "rpc", 100.0)]
    answers = {"b": Answer("b", 103.0, ok=True, mark="r2")}
    records = {
        "b": {"result_json": '{"run": "r9"}', "cloud": "c1", "deaths": 1, "late": {"c2-1": {}},
              "first_finish": {"result_json": '{"run": "r2"}'}},
    }  # fmt: skip
    runs = [Execution(101.0, "b", "rpc", 1), Execution(102.5, "b", "rpc", 2)]
    faults = [Fault("freeze_cloud", "cloud1", 100.5, 102.0), Fault("kill_db", "db", 500.0, 503.0)]
    [detail] = checks.contradiction_details(["b"], sent, answers, records, runs, faults, 100.0)
    assert detail["answered"] == [3.0, "r2"] and detail["runs"] == [1.0, 2.5]
    assert detail["record"]["mark"] == "r9" and detail["record"]["first_finish"] == "r2"
    assert detail["record"]["cloud"] == "c1" and detail["record"]["late"] == {"c2-1": {}}
    assert detail["faults"] == [("freeze_cloud", "cloud1", 0.5, 2.0)]  # not the one far away
    # A record that is garbage does not stop the report.
    [bad] = checks.contradiction_details(
        ["b"], sent, answers, {"b": {"result_json": "{"}}, [], [], 100.0
    )
    assert bad["record"]["mark"] == "<not JSON>" and bad["runs"] == []


def test_an_expectation_may_accept_a_result() -> None:
    ok = Answer("k", 1.0, ok=True)
    assert not checks.Expect("e").matches(ok)
    assert checks.Expect("e", or_result=True).matches(ok)


def test_two_answers_to_one_caller_are_duplicates_a_rewritten_reply_is_counted_apart() -> None:
    answers = [Answer("a", 1.0, ok=True), Answer("a", 2.0, ok=True), Answer("b", 1.0, ok=True)]
    assert checks.answered_twice(answers) == {"a": 2}
    assert checks.rewritten({"a": 1, "b": 2}) == {"b": 2}


def test_answer_from_a_timeout_keeps_its_class() -> None:
    answer = answer_from("k", JobTimeout("late", job_id="k"))
    assert (answer.ok, answer.error) == (False, "JobTimeout")


def test_plan_gives_every_kind_in_a_short_run_and_stays_inside_it() -> None:
    schedule = plan(KINDS, duration=70.0, every=10.0, rng=random.Random(1))
    assert {kind for _, kind in schedule} == set(KINDS)
    assert all(0 < at < 70.0 for at, _ in schedule)
    assert [at for at, _ in schedule] == sorted(at for at, _ in schedule)


def test_no_kinds_no_faults() -> None:
    assert plan((), duration=600.0, every=10.0, rng=random.Random(1)) == []


def test_leader_pid_from_a_dispatcher_id() -> None:
    assert leader_pid("my-host-1234-ab12") == 1234
    assert leader_pid("nonsense") is None


def test_report_marks_failures() -> None:
    rows = [Row("lost", "0", True), Row("duplicates", "2", False), Row("info", "x")]
    assert failures(rows) == ["duplicates"]
    assert "FAIL duplicates" in render("t", rows)


def test_backlog_tenths() -> None:
    assert tenth(list(range(100)), "first") == list(range(10))
    assert tenth([1.0, 2.0], "last") == [2.0]
    times = [i * 0.01 for i in range(1000)]
    assert rates_per_tenth(times) == [101.0] * 10


def test_watch_reads_the_wire() -> None:
    lease = {"owner": "a", "epoch": 1, "expires": 10}
    assert watch.lease_change(None, lease) == "other"
    assert watch.lease_change(lease, {**lease, "expires": 20}) == "renewal"
    assert watch.lease_change(lease, {**lease, "epoch": 2}) == "election"
    assert watch.lease_change(lease, lease) is None
    clouds = {"c1": {"heartbeat": 1}, "c2": {"heartbeat": 5}}
    assert watch.beats(clouds, {"c1": {"heartbeat": 2}, "c2": {"heartbeat": 5}}) == 1
    assert watch.beats(None, clouds) == 2
    inbox: dict[str, Any] = {"c1": {"j1": {}, "j2": {}}, "c2": {"j3": {}}}
    assert watch.held_changes(inbox, {"c1": {"j2": {}}, "c3": {"j4": {}}}) == {
        "c1": -1, "c2": -1, "c3": 1,
    }  # fmt: skip
    assert watch.new_replies({"r1": {"ok": True}}, {"r1": {"ok": True}, "r2": 1}) == {"r2": 1}


def test_tick_runs_are_judged_as_jobs_are() -> None:
    runs = [Execution(10.0, "AAAA@tick", "noop", 1), Execution(14.0, "AAAA@tick", "noop", 2),
            Execution(50.0, "BBBB@tick", "noop", 1), Execution(51.0, "BBBB@tick", "noop", 2),
            Execution(60.0, "CCCC@tick", "noop", 1), Execution(61.0, "CCCC@other", "noop", 1),
            Execution(62.0, "j1", "noop", 1), Execution(63.0, "j1", "noop", 2),
            Execution(99.0, "DDDD@tick", "noop", 1)]  # fmt: skip
    faults = [Fault("kill_leader", "dispatcher0", 11.0, 13.5)]
    ticks = checks.tick_runs(runs, faults, "tick", stopped=90.0)
    # D ran after the stream stopped (not counted as run); other schedules and jobs are not ticks.
    assert ticks == checks.TickRuns(3, {"AAAA@tick": 2}, {"BBBB@tick": 2})
