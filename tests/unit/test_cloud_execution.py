"""How an attempt ends (pure): finishes, the final/retry verdict, and the completion update."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atmosphere import DatabaseError, InvalidJob, PermissionDenied, RequestRefused, Retry, jobs
from atmosphere.completion import completion_writes, judge
from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.db.client import encode_json
from atmosphere.jobs import ChainRef, Finish, JobSpec, JobState
from atmosphere.localdb.service import LocalDb, Response
from atmosphere.paths import Paths
from atmosphere.storable import value_problem
from atmosphere.worker.execution import (
    dropped_writes,
    finish_done_with,
    finish_raised,
    finish_returned,
    handback_writes,
    refused_finish,
    result_depth,
    transient,
)
from tests.unit.test_storable import nested, shallow

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
        "value_json": '"no luck"',
    }
    assert finish_done_with(ValueError("v"), None, 100, depth=5).error["type"] == "ValueError"  # type: ignore[index]


def test_a_final_success_replies_in_the_same_update() -> None:
    writes = completion_writes(
        PATHS, cloud_id="c1", spec=spec(), finish=Finish(ok=True, result=7), started=0.001
    )
    assert writes["live/inbox/c1/j1"] is None
    assert writes["replies/m1/j1"] == {"ok": True, "job": "j1", "result_json": "7"}
    assert writes["live/outcomes/j1"]["replied"] is True
    assert writes["live/outcomes/j1"]["finished"] == SERVER_TIMESTAMP
    assert writes["jobs/j1/state"] == "succeeded" and writes["jobs/j1/result_json"] == "7"
    # the start time (seconds here) is written as the wire's integer ms
    assert writes["live/outcomes/j1"]["started"] == writes["jobs/j1/started"] == 1


def test_a_completion_encodes_its_result_once(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[Any] = []
    real = jobs.encode_json

    def counted(value: Any, what: str = "value") -> str:
        encoded.append(value)
        return real(value, what)

    monkeypatch.setattr(jobs, "encode_json", counted)
    finish = Finish(ok=True, result={"a": [1]})
    writes = completion_writes(
        PATHS,
        cloud_id="c1",
        spec=spec(),
        finish=finish,
        started=0.001,
        verdict=judge(spec(), finish),
    )
    assert writes["replies/m1/j1"]["result_json"] == '{"a":[1]}'
    assert writes["live/outcomes/j1"]["result_json"] == writes["jobs/j1/result_json"] == '{"a":[1]}'
    assert encoded == [{"a": [1]}]  # the outcome's text serves the record and the reply


@pytest.mark.parametrize("root", ["atmosphere", "apps/billing", ""])
def test_the_completion_paths_are_the_ones_paths_spells_under_any_root(root: str) -> None:
    paths = Paths(root)
    writes = completion_writes(
        paths, cloud_id="c1", spec=spec(), finish=Finish(ok=True, result=7), started=0.001
    )
    job = paths.rel(paths.jobs("j1"))
    assert set(writes) == {
        paths.rel(paths.inbox("c1", "j1")),
        paths.rel(paths.outcomes("j1")),
        paths.rel(paths.replies("m1", "j1")),
        *(f"{job}/{field}" for field in ("state", "started", "finished", "cloud", "result_json")),
    }


def test_a_retry_does_not_reply_and_says_so() -> None:
    finish = finish_raised(Retry(delay=2))
    writes = completion_writes(
        PATHS, cloud_id="c1", spec=spec(retries=1), finish=finish, started=0.001
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
        PATHS, cloud_id="c1", spec=spec(), finish=finish_raised(Retry()), started=0.001
    )
    assert "no attempt is left" in writes["replies/m1/j1"]["error"]["message"]


def test_chain_steps_and_fire_and_forget_jobs_get_no_reply() -> None:
    step = spec(reply_to=None, chain=ChainRef("ch", 0))
    finish = Finish(ok=True, result=1)
    writes = completion_writes(PATHS, cloud_id="c1", spec=step, finish=finish, started=0.001)
    assert not any(k.startswith("replies/") for k in writes)


def test_handback_moves_jobs_from_the_inbox_to_the_queue() -> None:
    assigned = spec(assigned=0.123, epoch=4, attempt=2)
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


# -- results the database would refuse (issue 8, finding 3) ---------------------------------


def test_an_invalid_result_is_final_whatever_retries_are_left() -> None:
    finish = finish_returned(math.inf, 1_000_000, depth=5)
    assert finish.error is not None and finish.error["kind"] == "InvalidResult"
    assert "result is not JSON-serialisable" in finish.error["message"]
    verdict = judge(spec(attempt=1, retries=3), finish)
    assert verdict.final and verdict.state == JobState.FAILED


def test_a_result_of_any_depth_is_kept_as_it_travels_encoded() -> None:
    assert result_depth(PATHS, spec()) == 5  # replies/m1/j1/result_json, live/outcomes/...
    assert result_depth(Paths("a/b"), spec(reply_to=None)) == 6
    # One string at that depth: how deep the value nests does not matter to the database.
    assert finish_returned(nested(40), 1_000_000, depth=6) == Finish(ok=True, result=nested(40))


def test_a_done_with_error_value_of_any_depth_travels_encoded() -> None:
    finish = finish_done_with(nested(30), None, 1_000_000, depth=5)
    assert finish.error is not None and json.loads(finish.error["value_json"]) == nested(30)
    assert finish.error["message"].startswith('{"a":{"a"')
    kept = finish_done_with({"code": 4}, nested(30), 1_000_000, depth=5)
    assert kept.error is not None and kept.error["value_json"] == '{"code":4}'
    assert kept.result == nested(30)
    unsendable = finish_done_with({"when": object()}, None, 1_000_000, depth=5)
    assert unsendable.error is not None and "value_json" not in unsendable.error
    assert unsendable.error["message"].startswith("{'when': <object")


def test_what_a_handler_raises_always_makes_a_writable_error() -> None:
    try:
        raise OSError("no such file: b'caf\\xe9' decoded as caf\udce9")
    except OSError as exc:
        raised = finish_raised(exc)
    assert raised.error is not None
    assert "caf\\udce9" in raised.error["message"]
    json.dumps(raised.error, ensure_ascii=False).encode()  # valid UTF-8 throughout
    for delay in (math.nan, math.inf, -1.0, "5"):
        assert finish_raised(Retry(delay=delay)).retry_delay is None  # type: ignore[arg-type]
    assert finish_raised(Retry(delay=2.5)).retry_delay == 2.5


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (DatabaseError("GET /x: the database is unreachable (refused)"), True),
        (DatabaseError("cannot PATCH '/atmosphere': HTTP 503: busy", status=503), True),
        (RequestRefused("cannot PATCH '/atmosphere': HTTP 400: bad", status=400), False),
        (RequestRefused("Request body exceeds 33554432 bytes", status=413), False),
        (PermissionDenied("cannot PATCH '/atmosphere': Permission denied", status=401), False),
        (TypeError("Object of type set is not JSON serializable"), False),
    ],
)
def test_only_transport_errors_are_retried(error: Exception, again: bool) -> None:
    assert transient(error) is again


def test_the_fallbacks_carry_nothing_the_handler_made() -> None:
    instead = refused_finish(RequestRefused("HTTP 400: Invalid data", status=400))
    assert instead.error is not None and instead.error["kind"] == "InvalidResult"
    assert judge(spec(retries=5), instead).final
    writes = completion_writes(PATHS, cloud_id="c1", spec=spec(), finish=instead, started=0.001)
    assert writes["jobs/j1/result_json"] is None and writes["replies/m1/j1"]["ok"] is False
    dropped = dropped_writes(PATHS, "c1", spec(), "refused \ud800" + "x" * 5000)
    assert dropped["live/inbox/c1/j1"] is None and dropped["jobs/j1/state"] == "failed"
    assert len(dropped["jobs/j1/error"]["message"]) < 1000
    assert value_problem(dropped["jobs/j1/error"], "error", depth=3, max_bytes=10_000) is None


def _server_takes(server: LocalDb, writes: dict[str, Any]) -> bool:
    try:
        body = encode_json(writes)
    except DatabaseError:  # not JSON at all: the client refuses it before sending
        return False
    answer = server.handle("PATCH", b"/atmosphere.json", b"ns=completions", OWNER, body)
    assert isinstance(answer, Response) and answer.status in (200, 400), answer
    return answer.status == 200


OWNER = {b"authorization": b"Bearer owner"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wrap=st.integers(0, 30),
    inner=shallow,
    reply_to=st.sampled_from([None, "m1"]),
    step=st.sampled_from([None, 0, 3]),
)
def test_whatever_a_handler_returns_the_completion_is_one_the_server_takes(
    localdb: LocalDb, wrap: int, inner: Any, reply_to: str | None, step: int | None
) -> None:
    job = spec(reply_to=reply_to, chain=None if step is None else ChainRef("ch", step))
    value = nested(wrap, inner)
    finish = finish_returned(value, 1_000_000, depth=result_depth(PATHS, job))

    def completion(f: Finish) -> dict[str, Any]:
        return completion_writes(PATHS, cloud_id="c1", spec=job, finish=f, started=0.001)

    # The result is kept exactly when it is JSON the server would store where the cloud writes
    # it (encoded: one string, however deep the value)...
    try:
        wanted = completion(Finish(ok=True, result=value))
    except InvalidJob:  # not JSON (NaN, infinity): nothing the server could be sent
        wanted = None
    assert finish.ok == (wanted is not None and _server_takes(localdb, wanted))
    # ...and either way, what the cloud writes is taken.
    assert _server_takes(localdb, completion(finish))


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        ("x" * 10, True),
        ("x" * 94, True),  # stored as "\\"xx..x\\"" with quotes: 100 bytes, the limit
        ("x" * 95, False),
        ("\n" * 31, True),  # each newline is stored as three bytes (\\n escaped)
        ("\n" * 32, False),
    ],
)
def test_a_short_result_skips_the_size_walk_yet_the_limit_holds_at_its_edge(
    result: str, ok: bool
) -> None:
    assert finish_returned(result, 100, depth=5).ok is ok
