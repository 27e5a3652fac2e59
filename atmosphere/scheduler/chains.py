"""Chain progression: the data cascade, ``callback: true`` and the one reply per chain (pure).

Rules (DESIGN.md, docs/protocol.md): step k+1 has id ``{chainId}-{k+1}``, the chain's name, and
data = its own data merged with ``{<type of step k>: <result of step k>}``. An error ends the chain
and replies at once; a ``callback: true`` step replies with its result and the chain goes on;
a chain replies at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atmosphere.jobs import ChainRef, ChainState, JobSpec, Reply, chain_step_id


@dataclass(frozen=True)
class ChainMove:
    """What to do after one step of a chain settled."""

    reply: Reply | None  # the chain's one reply, when it is due now
    next_job: JobSpec | None  # the next step to queue, if the chain goes on
    finished: bool  # True: delete the chain record


def cascade(own: Any, prev_type: str, prev_result: Any) -> Any:
    """Step k+1's data: its own data merged with ``{prev_type: prev_result}``."""
    if own is None:
        return {prev_type: prev_result}
    if isinstance(own, dict):
        return {**own, prev_type: prev_result}
    # A non-object cannot be extended in place; keep it under "data" beside the cascade.
    return {"data": own, prev_type: prev_result}


def step_job(
    chain: ChainState, index: int, data: Any, *, submitted: float | None = None
) -> JobSpec:
    """The JobSpec of step ``index`` of ``chain`` (no reply_to: the dispatcher answers chains)."""
    step = chain.steps[index]
    return JobSpec(
        id=chain_step_id(chain.id, index),
        type=step.type,
        name=chain.name,
        data=data,
        timeout=step.timeout if step.timeout is not None else chain.timeout,
        submitted=submitted,
        retries=step.retries,
        retry_backoff=step.retry_backoff,
        retry_backoff_max=step.retry_backoff_max,
        chain=ChainRef(id=chain.id, step=index),
        parent=chain.parent,
    )


def after_success(
    chain: ChainState, index: int, job_id: str, result: Any, *, submitted: float | None = None
) -> ChainMove:
    """Step ``index`` returned ``result``: reply if due, queue the next step or finish."""
    step = chain.steps[index]
    last = index + 1 >= len(chain.steps)
    reply = None
    if chain.reply_to and not chain.replied and (step.callback or last):
        reply = Reply(ok=True, job=job_id, result=result)
    if last:
        return ChainMove(reply=reply, next_job=None, finished=True)
    following = chain.steps[index + 1]
    data = cascade(following.data, step.type, result)
    return ChainMove(
        reply=reply,
        next_job=step_job(chain, index + 1, data, submitted=submitted),
        finished=False,
    )


def after_failure(
    chain: ChainState, job_id: str, error: dict[str, Any] | None, result: Any = None
) -> ChainMove:
    """A step failed for good: the chain ends and replies with the error (unless it replied),
    and with the result the step's done_with passed along with it."""
    reply = None
    if chain.reply_to and not chain.replied:
        error = error or {"kind": "JobFailed", "message": ""}
        reply = Reply(ok=False, job=job_id, error=error, result=result)
    return ChainMove(reply=reply, next_job=None, finished=True)
