"""What the dispatcher writes when an attempt's outcome arrives (pure; docs/protocol.md).

Success: the cloud already wrote the job record and the caller's reply, so settling is deleting
the outcome, plus chain progress. Failure: another attempt later (``live/delayed``) while retries
remain, else the dead letter (``jobs/{id}`` state ``failed``, kept) and the one error reply.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import ChainState, JobSpec, JobState, Outcome, Reply
from atmosphere.paths import Paths
from atmosphere.scheduler import chains
from atmosphere.scheduler.retries import may_retry, retry_delay


@dataclass
class Settlement:
    """The writes that settle one outcome, and what it meant."""

    kind: str  # "succeeded", "failed" (dead letter), "retried", "late"
    writes: dict[str, Any] = field(default_factory=dict)
    queued: list[JobSpec] = field(default_factory=list)  # jobs this settlement queues


def queue_entry(spec: JobSpec) -> dict[str, Any]:
    """A job's queue entry: its spec without assignment fields."""
    return spec.evolve(assigned=None, epoch=None, eta=None).to_json()


def new_job_writes(paths: Paths, spec: JobSpec) -> dict[str, Any]:
    """Queue a job the dispatcher creates (a chain step, a schedule tick): record + queue entry."""
    entry = queue_entry(spec)
    return {
        paths.jobs(spec.id): {**entry, "state": JobState.QUEUED.value},
        paths.queue(spec.type, spec.id): entry,
    }


def late_writes(paths: Paths, outcome: Outcome) -> dict[str, Any]:
    """Record a duplicate or stale outcome in the job record and drop it."""
    key = f"{outcome.cloud or 'unknown'}-{outcome.attempt}"
    return {
        paths.outcomes(outcome.job_id): None,
        f"{paths.jobs(outcome.job_id)}/late/{key}": {
            "cloud": outcome.cloud,
            "attempt": outcome.attempt,
            "ok": outcome.ok,
            "finished": outcome.finished or SERVER_TIMESTAMP,
        },
    }


def settle(
    paths: Paths,
    spec: JobSpec,
    outcome: Outcome,
    chain: ChainState | None,
    now_ms: int,
    *,
    rand: Callable[[], float] = random.random,
) -> Settlement:
    """Decide and build the writes for the first outcome of ``spec``'s current attempt."""
    if chain is not None and spec.chain is not None and spec.chain.step != chain.step:
        return Settlement("late", late_writes(paths, outcome))
    if chain is not None and chain.step >= len(chain.steps):
        chain = None  # a chain record pointing past its own steps: settle as a plain job
    if outcome.ok:
        result = _succeed(paths, spec, outcome, chain, now_ms)
    elif may_retry(spec, outcome):
        result = _retry(paths, spec, outcome, now_ms, rand)
    else:
        result = _fail(paths, spec, outcome, chain)
    result.writes[paths.outcomes(spec.id)] = None
    return result


def _succeed(
    paths: Paths, spec: JobSpec, outcome: Outcome, chain: ChainState | None, now_ms: int
) -> Settlement:
    done = Settlement("succeeded")
    if spec.reply_to and not outcome.replied:
        reply = Reply(ok=True, job=spec.id, result=outcome.result)
        done.writes[paths.replies(spec.reply_to, spec.id)] = reply.to_json()
    if chain is not None and spec.chain is not None:
        move = chains.after_success(
            chain, spec.chain.step, spec.id, outcome.result, submitted=now_ms
        )
        _apply_chain_move(paths, done, chain, spec, move)
    return done


def _retry(
    paths: Paths, spec: JobSpec, outcome: Outcome, now_ms: int, rand: Callable[[], float]
) -> Settlement:
    wait = retry_delay(spec, outcome, rand=rand)
    again = spec.evolve(attempt=outcome.attempt + 1, assigned=None, epoch=None)
    record = paths.jobs(spec.id)
    done = Settlement("retried")
    done.writes.update(
        {
            f"{record}/state": JobState.RETRYING.value,
            f"{record}/finished": None,  # retention collects by it: only for finished jobs
            f"{record}/attempt": again.attempt,
            f"{record}/outcomes/{outcome.attempt}": _short(outcome),
        }
    )
    if wait <= 0:
        done.writes[paths.queue(spec.type, spec.id)] = queue_entry(again)
        done.writes[f"{record}/state"] = JobState.QUEUED.value
        done.queued.append(again)
    else:
        eta = now_ms + int(wait * 1000)
        done.writes[paths.delayed(spec.id)] = again.evolve(eta=eta).to_json()
        done.writes[f"{record}/eta"] = eta
    return done


def _fail(paths: Paths, spec: JobSpec, outcome: Outcome, chain: ChainState | None) -> Settlement:
    error = outcome.error or {"kind": "JobFailed", "message": "the job failed"}
    record = paths.jobs(spec.id)
    done = Settlement("failed")
    done.writes.update(
        {
            f"{record}/state": JobState.FAILED.value,
            f"{record}/error": error,
            f"{record}/finished": outcome.finished or SERVER_TIMESTAMP,
        }
    )
    if spec.reply_to and not outcome.replied:
        reply = Reply(ok=False, job=spec.id, error=error, result=outcome.result)
        done.writes[paths.replies(spec.reply_to, spec.id)] = reply.to_json()
    if chain is not None and spec.chain is not None:
        move = chains.after_failure(chain, spec.id, error, outcome.result)
        _apply_chain_move(paths, done, chain, spec, move)
    return done


def _apply_chain_move(
    paths: Paths, done: Settlement, chain: ChainState, spec: JobSpec, move: chains.ChainMove
) -> None:
    at = paths.chains(chain.id)
    if move.reply is not None and chain.reply_to:
        done.writes[paths.replies(chain.reply_to, chain.id)] = move.reply.to_json()
        # Lets garbage collection find the chain's reply from this job's record.
        done.writes[f"{paths.jobs(spec.id)}/chain_reply_to"] = chain.reply_to
    if move.finished:
        done.writes[at] = None
        return
    done.writes[f"{at}/step"] = chain.step + 1
    if move.reply is not None:
        done.writes[f"{at}/replied"] = True
    if move.next_job is not None:
        done.writes.update(new_job_writes(paths, move.next_job))
        done.queued.append(move.next_job)


def _short(outcome: Outcome) -> dict[str, Any]:
    error = outcome.error or {}
    return {
        "cloud": outcome.cloud,
        "message": str(error.get("message", ""))[:500],
        "type": str(error.get("type", "")),
        "finished": outcome.finished or SERVER_TIMESTAMP,
    }
