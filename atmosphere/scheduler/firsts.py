"""First finish wins, in the job record as in the response (docs/protocol.md, "First outcome wins").

A job a cloud held when it was declared dead is requeued and may finish twice: the cloud was only
frozen, wakes up and completes its run too. A job can also run twice with no death counted: a
deposed leader's assignment, built before it froze, lands when it resumes, after the new leader
assigned and settled the same job (chaos, CI stop 15). Both completions write the job record
(the hot path has no room for a conditional write); the dispatcher settles the first outcome and
records the other as late. So it keeps what the first finish of every job wrote to the record
(the last ``MEMORY`` jobs, their results within ``MEMORY_BYTES``), and writes that back when a
late completion lands over it (and the reply too, when the late one replied: a maker that was
away then still finds the first answer).

The settlement of such a job also keeps the first finish in the job record (``first_finish``,
in the same PATCH), so a dispatcher that did not settle it (elected after a leader died or
froze) still knows it when the late one lands.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import orjson

from atmosphere.completion import completion_writes
from atmosphere.jobs import InvalidRecord, JobSpec, JobState, Outcome, Reply
from atmosphere.paths import Paths
from atmosphere.wiretime import parse_ms, render_ms, to_ms

# Finishes remembered: a late run lands seconds after the first (a freeze of a lease or more),
# so this is many seconds of finishes at full speed. Their results are kept within MEMORY_BYTES
# (encoded); each job's data is not kept at all.
MEMORY = 20_000
MEMORY_BYTES = 32 * 1024 * 1024
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
    """The settled final finish of recent jobs, should another run of one finish too; bounded
    by count and by the encoded size of the results kept."""

    def __init__(self, size: int = MEMORY, max_bytes: int = MEMORY_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._kept: OrderedDict[str, tuple[Settled, int]] = OrderedDict()
        self._bytes = 0

    def keep(self, settled: Settled) -> None:
        """A job finished for good (``settled``); keep its finish, in case another run lands."""
        spec = settled.spec
        if spec.data is not None:  # a finish is rebuilt without the job's data: do not hold it
            settled.spec = spec.evolve(data=None)
        weight = _weight(settled.outcome.result)
        self._drop(spec.id)
        self._kept[spec.id] = (settled, weight)
        self._bytes += weight
        while self._kept and (len(self._kept) > self.size or self._bytes > self.max_bytes):
            _, (_, dropped) = self._kept.popitem(last=False)
            self._bytes -= dropped

    def _drop(self, job_id: str) -> None:
        gone = self._kept.pop(job_id, None)
        if gone is not None:
            self._bytes -= gone[1]

    def knows(self, job_id: str) -> bool:
        """Whether a first finish of the job is kept here."""
        return job_id in self._kept

    def _get(self, job_id: str) -> Settled | None:
        kept = self._kept.get(job_id)
        return None if kept is None else kept[0]

    def settled_attempt(self, job_id: str) -> int | None:
        """The attempt whose finish is kept for the job, else None."""
        kept = self._get(job_id)
        return None if kept is None else kept.outcome.attempt

    def forget(self, job_id: str) -> None:
        """The job runs again (requeued, retried by an operator): its old finish is history."""
        self._drop(job_id)

    def second(self, outcome: Outcome) -> bool:
        """True when ``outcome`` is another run's finish of a job kept here (another cloud's,
        or the same cloud's run of a deposed leader's late assignment: started at another time)."""
        first = self._get(outcome.job_id)
        if first is None:
            return False
        settled = first.outcome
        return (settled.cloud, settled.started) != (outcome.cloud, outcome.started)

    def replay(self, spec: JobSpec, settled: int | None) -> FirstFinish | None:
        """The first finish of a job queued again at an attempt that already succeeded here
        (``settled``), else None.

        Only a deposed leader's late PATCH queues it so: settling the chain step before it
        (its whole record back to ``queued``), or an assignment of it that a cloud then handed
        back (fenced: the cloud had seen the new leader's epoch). A retry raises the attempt,
        and an operator retries only a failed job.
        """
        first = self._get(spec.id)
        if first is None or settled is None or spec.attempt > settled:
            return None
        if first.state != JobState.SUCCEEDED:
            return None
        return first.first()

    def restore(self, late: Outcome) -> dict[str, Any]:
        """Writes that undo what a ``late`` completion wrote ({} when nothing is kept)."""
        kept = self._get(late.job_id)
        if kept is None:
            return {}
        first = kept.first()
        return {**first.record, **first.reply} if late.replied else dict(first.record)

    def __len__(self) -> int:
        return len(self._kept)


def _weight(result: Any) -> int:
    """About what keeping ``result`` costs, in encoded bytes (a scalar counts as nothing)."""
    if isinstance(result, str):
        return len(result)
    if isinstance(result, (dict, list)):
        return len(orjson.dumps(result))  # it came as JSON: no check needed
    return 0
