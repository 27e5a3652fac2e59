"""Chain progression: the data cascade, callback: true, errors, one reply per chain."""

from __future__ import annotations

from typing import Any

from atmosphere.jobs import ChainRef, ChainState, ChainStep, Finish, JobSpec, Outcome, payload
from atmosphere.paths import Paths
from atmosphere.scheduler.chains import after_failure, after_success, cascade
from atmosphere.scheduler.settlement import settle

P = Paths("atmosphere")


def chain(
    *steps: ChainStep, step: int = 0, replied: bool = False, reply_to: str | None = "m1"
) -> ChainState:
    return ChainState(
        id="c1",
        name="user1",
        steps=steps,
        timeout=30.0,
        step=step,
        reply_to=reply_to,
        replied=replied,
        submitted=1000,
    )


def test_cascade_matches_the_original_readme() -> None:
    assert cascade({"param2": "initial message"}, "first", {"a": 1, "b": 2, "c": 3}) == {
        "param2": "initial message",
        "first": {"a": 1, "b": 2, "c": 3},
    }
    assert cascade(None, "first", 5) == {"first": 5}
    assert cascade([1, 2], "first", 5) == {"data": [1, 2], "first": 5}


def test_success_mid_chain_queues_the_next_step_with_the_chain_name_and_no_reply() -> None:
    c = chain(ChainStep("first", {"param1": 1}, timeout=5), ChainStep("second", {"param2": 2}))
    move = after_success(c, 0, "c1-0", {"a": 1})
    assert move.reply is None and not move.finished
    nxt = move.next_job
    assert nxt is not None
    assert (nxt.id, nxt.type, nxt.name) == ("c1-1", "second", "user1")
    assert nxt.data == {"param2": 2, "first": {"a": 1}}
    assert nxt.chain == ChainRef("c1", 1) and nxt.reply_to is None
    assert nxt.timeout == 30.0  # later steps take the chain's timeout


def test_the_next_step_keeps_its_retry_options_and_backoff_cap() -> None:
    capped = ChainStep("second", retries=3, retry_backoff=2.0, retry_backoff_max=10.0)
    c = chain(ChainStep("first"), ChainStep.from_json(capped.to_json()))
    nxt = after_success(c, 0, "c1-0", None).next_job
    assert nxt is not None
    assert (nxt.retries, nxt.retry_backoff, nxt.retry_backoff_max) == (3, 2.0, 10.0)


def test_last_step_replies_with_its_result() -> None:
    c = chain(ChainStep("first"), ChainStep("second"), step=1)
    move = after_success(c, 1, "c1-1", "done")
    assert move.finished and move.next_job is None
    assert move.reply is not None and move.reply.ok and move.reply.result == "done"
    assert move.reply.job == "c1-1"


def test_callback_true_replies_and_the_chain_goes_on_with_only_one_reply() -> None:
    c = chain(ChainStep("first", callback=True), ChainStep("second"))
    move = after_success(c, 0, "c1-0", 1)
    assert move.reply is not None and move.reply.result == 1 and move.next_job is not None
    later = after_success(
        chain(ChainStep("first", callback=True), ChainStep("second"), step=1, replied=True),
        1,
        "c1-1",
        2,
    )
    assert later.reply is None and later.finished


def test_error_ends_the_chain_and_replies_at_once_unless_it_replied() -> None:
    c = chain(ChainStep("first"), ChainStep("second"), ChainStep("third"))
    err = {"kind": "JobFailed", "message": "boom"}
    move = after_failure(c, "c1-0", err)
    assert move.finished and move.next_job is None
    assert move.reply is not None and not move.reply.ok and move.reply.error == err
    replied = chain(ChainStep("first"), ChainStep("second"), replied=True)
    assert after_failure(replied, "c1-0", err).reply is None


def test_fire_and_forget_chain_never_replies() -> None:
    c = chain(ChainStep("first"), reply_to=None)
    assert after_success(c, 0, "c1-0", 1).reply is None


def step_spec(index: int, c: ChainState) -> JobSpec:
    return JobSpec(
        id=f"c1-{index}", type=c.steps[index].type, name="user1", chain=ChainRef("c1", index)
    )


def ok(index: int, result: Any) -> Outcome:
    return Outcome(f"c1-{index}", "x", 1, Finish(ok=True, result=result))


def test_settle_writes_progress_the_chain_in_one_update() -> None:
    c = chain(ChainStep("first", callback=True), ChainStep("second", {"k": 1}))
    done = settle(P, step_spec(0, c), ok(0, 42), c, 5.0)
    w = done.writes
    assert w["atmosphere/live/outcomes/c1-0"] is None
    assert w["atmosphere/replies/m1/c1"] == {"ok": True, "job": "c1-0", "result_json": "42"}
    assert w["atmosphere/live/chains/c1/step"] == 1
    assert w["atmosphere/live/chains/c1/replied"] is True
    assert payload(w["atmosphere/live/queue/second/c1-1"], "data") == {"k": 1, "first": 42}
    assert w["atmosphere/jobs/c1-1"]["state"] == "queued"


def test_settle_of_a_stale_step_is_late() -> None:
    c = chain(ChainStep("first"), ChainStep("second"), step=1)
    assert settle(P, step_spec(0, c), ok(0, 1), c, 5.0).kind == "late"


def test_settle_final_failure_of_a_step_replies_error_and_deletes_the_chain() -> None:
    c = chain(ChainStep("first"), ChainStep("second"))
    failed = Outcome("c1-0", "x", 1, Finish(ok=False, error={"kind": "JobFailed", "message": "x"}))
    done = settle(P, step_spec(0, c), failed, c, 5.0)
    assert done.kind == "failed"
    assert done.writes["atmosphere/live/chains/c1"] is None
    assert done.writes["atmosphere/replies/m1/c1"]["ok"] is False
    assert done.writes["atmosphere/jobs/c1-0/state"] == "failed"
    assert not any("queue" in k for k in done.writes)


def test_a_chain_record_pointing_past_its_steps_settles_as_a_plain_job() -> None:
    c = chain(ChainStep("first"), step=5)
    spec = JobSpec(id="c1-5", type="first", name="user1", chain=ChainRef("c1", 5))
    done = settle(P, spec, Outcome.of(spec, Finish(ok=True, result=1), cloud="x"), c, 1)
    assert done.kind == "succeeded"
    assert not any("chains" in k for k in done.writes)
