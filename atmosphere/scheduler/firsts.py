"""First finish wins, in the job record as in the response (docs/protocol.md, "First outcome wins").

A job a cloud held when it was declared dead is requeued and may finish twice: the cloud was only
frozen, wakes up and completes its run too. Both completions write the job record (the hot path
has no room for a conditional write); the dispatcher settles the first outcome and records the
other as late. So for a job that may finish twice (``deaths > 0``) it keeps what the first finish
wrote to the record, and writes that back when a late completion lands over it (and the reply
too, when the late one replied: a maker that was away then still finds the first answer).

The settlement of such a job also keeps the first finish in the job record (``first_finish``,
in the same PATCH), so a dispatcher that did not settle it (elected after a leader died or
froze) still knows it when the late one lands.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from atmosphere.completion import completion_writes
from atmosphere.jobs import InvalidRecord, JobSpec, JobState, Outcome, Reply
from atmosphere.paths import Paths
from atmosphere.wiretime import parse_ms, render_ms, to_ms

# Jobs remembered: only those that lost a cloud, so a handful unless a whole fleet dies at once.
MEMORY = 2_000
_NO_ERROR = {"kind": "JobFailed", "message": "the job failed"}  # as settling writes it
# The job record's field that keeps the first finish for the next leader.
FIELD = "first_finish"


@dataclass(frozen=True)
class FirstFinish:
    """What the settled first finish of a job wrote: record fields, and the caller's reply."""

    cloud: str
    record: dict[str, Any]
    reply: dict[str, Any]  # {} for a chain step (the chain's reply is ours alone) or no caller


def first_finish(
    paths: Paths, spec: JobSpec, outcome: Outcome, state: JobState, now: float
) -> FirstFinish:
    """The record fields and reply of ``outcome``'s finish, written as a cloud writes them (pure).

    Built with the cloud's own ``completion_writes``, so the fields (and how a result is encoded)
    are exactly what a late completion overwrites.
    """
    error = None if outcome.ok else (outcome.error or _NO_ERROR)
    finish = replace(outcome.finish, error=error)
    writes = completion_writes(
        paths, cloud_id=outcome.cloud, spec=spec, finish=finish, started=outcome.started or 0.0
    )
    prefix = paths.jobs(spec.id) + "/"
    record = {
        f"{paths.root}/{rel}": value
        for rel, value in writes.items()
        if f"{paths.root}/{rel}".startswith(prefix)
    }
    record[f"{prefix}state"] = state.value
    record[f"{prefix}started"] = render_ms(outcome.started)
    record[f"{prefix}finished"] = to_ms(outcome.finished or now)
    if outcome.ok:
        record[f"{prefix}error"] = None  # a failed late finish wrote one
    reply: dict[str, Any] = {}
    if spec.reply_to is not None and spec.chain is None:
        answer = Reply(ok=outcome.ok, job=spec.id, result=outcome.result, error=error)
        reply[paths.replies(spec.reply_to, spec.id)] = answer.to_json()
    return FirstFinish(outcome.cloud, record, reply)


@dataclass
class Settled:
    """A final finish as settling saw it: what ``first_finish`` builds its writes from, built
    when a second finish first needs them. Most jobs kept here (every chain step) never see
    one, and building costs a completion's writes per settlement."""

    paths: Paths
    spec: JobSpec
    outcome: Outcome
    state: JobState
    now: float
    _built: FirstFinish | None = None

    @property
    def cloud(self) -> str:
        return self.outcome.cloud

    def first(self) -> FirstFinish:
        """What the finish wrote (the same whenever asked: every input is immutable)."""
        if self._built is None:
            o = self
            self._built = first_finish(o.paths, o.spec, o.outcome, o.state, o.now)
        return self._built


def persisted(settled: Settled) -> dict[str, Any]:
    """``settled`` as the job record keeps it (``FIELD``): its outcome, state and settling time."""
    return {
        **settled.outcome.to_json(),
        "state": settled.state.value,
        "settled": render_ms(settled.now),
    }


def recalled(paths: Paths, spec: JobSpec, raw: Any) -> Settled | None:
    """The first finish a job record keeps (``raw``: its ``FIELD``), else None (none, or not
    one ``persisted`` wrote: a record is data anyone with access may have changed)."""
    if not isinstance(raw, dict):
        return None
    try:
        outcome = Outcome.from_json(raw, spec.id)
        state = JobState(str(raw.get("state")))
    except (InvalidRecord, ValueError, TypeError):
        return None
    if state not in (JobState.SUCCEEDED, JobState.FAILED):
        return None
    return Settled(paths, spec, outcome, state, parse_ms(raw.get("settled")) or 0.0)


class Firsts:
    """The settled final finish of each job that may still finish again, bounded."""

    def __init__(self, size: int = MEMORY) -> None:
        self.size = size
        self._kept: OrderedDict[str, Settled] = OrderedDict()

    @staticmethod
    def may_finish_again(spec: JobSpec) -> bool:
        """Whether ``spec``'s job may finish twice: one requeued while a cloud held it, or a
        chain step, which a deposed leader's late settlement of the step before can queue
        again after it finished (see ``replay``)."""
        return spec.deaths > 0 or spec.chain is not None

    def keep(self, settled: Settled) -> None:
        """A job finished for good (``settled``); keep it if a rerun may exist."""
        spec = settled.spec
        if not self.may_finish_again(spec):
            return  # never requeued while held: no second run to overwrite the record
        self._kept[spec.id] = settled
        self._kept.move_to_end(spec.id)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def knows(self, job_id: str) -> bool:
        """Whether a first finish of the job is kept here."""
        return job_id in self._kept

    def settled_attempt(self, job_id: str) -> int | None:
        """The attempt whose finish is kept for the job, else None."""
        kept = self._kept.get(job_id)
        return None if kept is None else kept.outcome.attempt

    def forget(self, job_id: str) -> None:
        """The job runs again (requeued, retried by an operator): its old finish is history."""
        self._kept.pop(job_id, None)

    def second(self, outcome: Outcome) -> bool:
        """True when ``outcome`` is another finish of a job kept here (another cloud's run)."""
        first = self._kept.get(outcome.job_id)
        return first is not None and first.cloud != outcome.cloud

    def replay(self, spec: JobSpec, settled: int | None) -> FirstFinish | None:
        """The first finish of a chain step queued again at an attempt that already succeeded
        here (``settled``), else None.

        Only a deposed leader's late PATCH settling the step before queues it so (its whole
        record back to ``queued``, or an assignment of its that the cloud then handed back):
        a retry raises the attempt, a requeue the deaths, and an operator retries only a
        failed job.
        """
        first = self._kept.get(spec.id)
        if spec.chain is None or first is None or settled is None or spec.attempt > settled:
            return None
        if first.state != JobState.SUCCEEDED:
            return None
        return first.first()

    def restore(self, late: Outcome) -> dict[str, Any]:
        """Writes that undo what a ``late`` completion wrote ({} when nothing is kept)."""
        kept = self._kept.get(late.job_id)
        if kept is None:
            return {}
        first = kept.first()
        return {**first.record, **first.reply} if late.replied else dict(first.record)

    def __len__(self) -> int:
        return len(self._kept)
