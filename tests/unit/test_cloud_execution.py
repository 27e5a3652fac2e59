"""How an attempt ends (pure): finishes, the final/retry verdict, and the completion update."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atmosphere import Retry
from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.execution import (
    Finish,
    completion_writes,
    finish_done_with,
    finish_raised,
    finish_returned,
    handback_writes,
    judge,
)
from atmosphere.jobs import ChainRef, JobSpec, JobState
from atmosphere.paths import Paths

PATHS = Paths("atmosphere")


def spec(**changes: Any) -> JobSpec:
    return JobSpec(id="j1", type="t", name="n", reply_to="m1").evolve(**changes)


@pytest.mark.parametrize(
    ("attempt", "retries", "finish", "final", "state"),
    [
        (1, 0, Finish(ok=True, result=1), True, JobState.SUCCEEDED),
        (1, 0, Finish(ok=False, error={"kind": "JobFailed"}), True, JobState.FAILED),
        (1, 2, Finish(ok=False, error={"kind": "JobFailed"}), False, JobState.RETRYING),
        (2, 2, Finish(ok=False, error={"kind": "JobFailed"}), False, JobState.RETRYING),
        (3, 2, Finish(ok=False, error={"kind": "JobFailed"}), True, JobState.FAILED),
        (1, 2, Finish(ok=False, error={"kind": "UnknownTaskType"}), True, JobState.FAILED),
    ],
)
def test_judge(attempt: int, retries: int, finish: Finish, final: bool, state: JobState) -> None:
    verdict = judge(spec(attempt=attempt, retries=retries), finish)
    assert (verdict.final, verdict.state) == (final, state)


def test_finishes() -> None:
    ok = finish_returned({"a": [1, None]}, 100, depth=5)
    assert ok == Finish(ok=True, result={"a": [1, None]})
    bad = finish_returned({1, 2}, 100, depth=5)
    assert not bad.ok and bad.error and "not JSON-serialisable" in bad.error["message"]
    big = finish_returned("x" * 200, 100, depth=5)
    assert not big.ok and big.error and "over the 100-byte limit" in big.error["message"]
    try:
        raise KeyError("k")
    except KeyError as exc:
        raised = finish_raised(exc)
    assert (
        raised.error
        and raised.error["type"] == "KeyError"
        and "raise KeyError" in raised.error["traceback"]
    )
    retry = finish_raised(Retry(delay=3))
    assert retry.retry_asked and retry.retry_delay == 3
    assert finish_done_with(None, 5, 100, depth=5) == Finish(ok=True, result=5)
    assert finish_done_with("no luck", None, 100, depth=5).error == {
        "kind": "JobFailed",
        "message": "no luck",
        "type": "done_with",
        "value": "no luck",
    }
    assert finish_done_with(ValueError("v"), None, 100, depth=5).error["type"] == "ValueError"  # type: ignore[index]


def test_a_final_success_replies_in_the_same_update() -> None:
    writes = completion_writes(
        PATHS, cloud_id="c1", spec=spec(), finish=Finish(ok=True, result=7), started_ms=1
    )
    assert writes["live/inbox/c1/j1"] is None
    assert writes["replies/m1/j1"] == {"ok": True, "job": "j1", "result": 7}
    assert writes["live/outcomes/j1"]["replied"] is True
    assert writes["live/outcomes/j1"]["finished"] == SERVER_TIMESTAMP
    assert writes["jobs/j1/state"] == "succeeded" and writes["jobs/j1/result"] == 7


def test_a_retry_does_not_reply_and_says_so() -> None:
    finish = finish_raised(Retry(delay=2))
    writes = completion_writes(
        PATHS, cloud_id="c1", spec=spec(retries=1), finish=finish, started_ms=1
    )
    assert "replies/m1/j1" not in writes
    outcome = writes["live/outcomes/j1"]
    assert outcome["retry"] is True and outcome["retry_delay"] == 2 and "replied" not in outcome
    assert writes["jobs/j1/state"] == "retrying"
    # Retention finds finished jobs by ``finished``: a job that goes on must not carry one, or
    # enough of them (waiting for a cloud past the retention) would stall collection for good.
    assert writes["jobs/j1/finished"] is None


def test_asking_for_a_retry_with_none_left_fails_for_good() -> None:
    writes = completion_writes(
        PATHS, cloud_id="c1", spec=spec(), finish=finish_raised(Retry()), started_ms=1
    )
    assert "no attempt is left" in writes["replies/m1/j1"]["error"]["message"]


def test_chain_steps_and_fire_and_forget_jobs_get_no_reply() -> None:
    step = spec(reply_to=None, chain=ChainRef("ch", 0))
    finish = Finish(ok=True, result=1)
    writes = completion_writes(PATHS, cloud_id="c1", spec=step, finish=finish, started_ms=1)
    assert not any(k.startswith("replies/") for k in writes)


def test_handback_moves_jobs_from_the_inbox_to_the_queue() -> None:
    assigned = spec(assigned=123, epoch=4, attempt=2)
    writes = handback_writes(PATHS, "c1", [assigned])
    assert writes["live/inbox/c1/j1"] is None
    entry = writes["live/queue/t/j1"]
    assert "assigned" not in entry and "epoch" not in entry and entry["attempt"] == 2
    assert writes["jobs/j1/state"] == "queued" and writes["jobs/j1/cloud"] is None


def test_a_huge_error_is_clipped_so_the_completion_stays_writable() -> None:
    # Given a handler whose exception message carries megabytes (say, a whole payload)
    try:
        raise ValueError("x" * 5_000_000)
    except ValueError as exc:
        raised = finish_raised(exc)
    told = finish_done_with("y" * 5_000_000, None, 1000, depth=5)
    # Then what is written stays small, and says it was cut
    for finish in (raised, told):
        assert finish.error is not None
        assert len(json.dumps(finish.error)) < 100_000
        assert "characters cut" in finish.error["message"]
    assert raised.error is not None and "ValueError" in raised.error["traceback"]
