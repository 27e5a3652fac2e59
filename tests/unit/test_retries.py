"""Retry decisions and exponential backoff with jitter, capped."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.jobs import Finish, JobSpec, Outcome
from atmosphere.paths import Paths
from atmosphere.scheduler.retries import backoff_seconds, may_retry, retry_delay
from atmosphere.scheduler.settlement import settle


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 5.0, 10.0)]
)
def test_backoff_doubles_then_caps(attempt: int, low: float, high: float) -> None:
    assert backoff_seconds(attempt, 1.0, 10.0, rand=lambda: 0.0) == low
    assert backoff_seconds(attempt, 1.0, 10.0, rand=lambda: 1.0) == high


@given(
    st.integers(1, 10_000),
    st.floats(0, 100, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
)
def test_backoff_stays_within_bounds(attempt: int, base: float, cap: float, r: float) -> None:
    wait = backoff_seconds(attempt, base, cap, rand=lambda: r)
    assert 0 <= wait <= cap + 1e-9
    assert wait >= min(cap, base) / 2 - 1e-9


def spec(retries: int) -> JobSpec:
    return JobSpec(
        id="j", type="t", name="n", retries=retries, retry_backoff=2, retry_backoff_max=60
    )


def outcome(
    attempt: int, *, retry: bool = True, ok: bool = False, delay: float | None = None
) -> Outcome:
    return Outcome("j", "c", attempt, Finish(ok=ok, retry_delay=delay), final=not retry)


def test_retry_only_while_attempts_remain_and_asked_for() -> None:
    assert may_retry(spec(2), outcome(1))
    assert may_retry(spec(2), outcome(2))
    assert not may_retry(spec(2), outcome(3))
    assert not may_retry(spec(2), outcome(1, retry=False))
    assert not may_retry(spec(2), outcome(1, ok=True))
    assert not may_retry(spec(0), outcome(1))


def test_handler_delay_wins_over_backoff() -> None:
    assert retry_delay(spec(3), outcome(1, delay=7.5)) == 7.5
    assert 2.0 <= retry_delay(spec(3), outcome(2), rand=lambda: 0.0) <= 4.0


def test_a_retry_clears_the_job_records_finished_time() -> None:
    # Retention finds finished jobs by ``finished``; a job that goes on must not carry one.
    spec = JobSpec(id="j1", type="t", name="n", retries=2, retry_backoff=0.0)
    failed = Outcome("j1", "c1", 1, Finish(ok=False), final=False, finished=0.005)
    for delay in (0.0, 30.0):
        outcome = replace(failed, finish=Finish(ok=False, retry_delay=delay))
        done = settle(Paths("atmosphere"), spec, outcome, None, 10.0, rand=lambda: 0.5)
        assert done.kind == "retried"
        assert done.writes["atmosphere/jobs/j1/finished"] is None


def test_a_delayed_retry_is_due_now_plus_its_delay_written_in_ms() -> None:
    # Given a settlement at server time 10 s of a failure asking for a 30 s delay,
    spec = JobSpec(id="j1", type="t", name="n", retries=2)
    failed = Outcome("j1", "c1", 1, Finish(ok=False, retry_delay=30.0), final=False)
    done = settle(Paths("atmosphere"), spec, failed, None, 10.0)
    # I expect the delayed entry and the job record to carry the wire's ms (40 s), once each.
    assert done.writes["atmosphere/live/delayed/j1"]["eta"] == 40_000
    assert done.writes["atmosphere/jobs/j1/eta"] == 40_000
    assert JobSpec.from_json(done.writes["atmosphere/live/delayed/j1"]).eta == 40.0
