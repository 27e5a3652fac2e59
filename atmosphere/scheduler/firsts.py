"""First finish wins, in the job record as in the response (docs/protocol.md, "First outcome wins").

A job a cloud held when it was declared dead is requeued and may finish twice: the cloud was only
frozen, wakes up and completes its run too. Both completions write the job record (the hot path
has no room for a conditional write); the dispatcher settles the first outcome and records the
other as late. So for a job that may finish twice (``deaths > 0``) it keeps what the first finish
means for the record, and writes that back when a late completion lands over it (and the reply
too, when the late one replied: a maker that was away then still finds the first answer).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from atmosphere.jobs import JobSpec, JobState, Outcome, Reply
from atmosphere.paths import Paths

# Jobs remembered: only those that lost a cloud, so a handful unless a whole fleet dies at once.
MEMORY = 2_000
_NO_ERROR = {"kind": "JobFailed", "message": "the job failed"}  # as settling writes it


def record_fields(outcome: Outcome, state: JobState, now_ms: int) -> dict[str, Any]:
    """The record fields a completion writes, as the settled ``outcome`` has them (pure)."""
    return {
        "state": state.value,
        "cloud": outcome.cloud or None,
        "started": outcome.started,
        "finished": outcome.finished or now_ms,
        "result": outcome.result if outcome.ok else None,
        "error": None if outcome.ok else (outcome.error or _NO_ERROR),
    }


def restore_writes(
    paths: Paths, job_id: str, fields: dict[str, Any], reply_to: str | None = None
) -> dict[str, Any]:
    """Put the first finish's fields back into ``jobs/{id}``, and its reply if given (pure)."""
    record = paths.jobs(job_id)
    writes = {f"{record}/{name}": value for name, value in fields.items()}
    if reply_to is not None:
        ok = fields["error"] is None
        reply = Reply(ok=ok, job=job_id, result=fields["result"], error=fields["error"])
        writes[paths.replies(reply_to, job_id)] = reply.to_json()
    return writes


class Firsts:
    """The settled final finish of each job that may still finish again, bounded."""

    def __init__(self, size: int = MEMORY) -> None:
        self.size = size
        self._kept: OrderedDict[str, tuple[dict[str, Any], str | None]] = OrderedDict()

    def keep(self, spec: JobSpec, fields: dict[str, Any]) -> None:
        """``spec``'s job finished for good with ``fields``; keep them if a rerun may exist."""
        if spec.deaths <= 0:
            return  # never requeued while held: no second run to overwrite the record
        # A chain step's reply is the chain's, written by us alone: only a plain job's is contested.
        reply_to = spec.reply_to if spec.chain is None else None
        self._kept[spec.id] = (fields, reply_to)
        self._kept.move_to_end(spec.id)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def forget(self, job_id: str) -> None:
        """The job runs again (requeued, retried by an operator): its old finish is history."""
        self._kept.pop(job_id, None)

    def second(self, outcome: Outcome) -> bool:
        """True when ``outcome`` is another finish of a job kept here (another cloud's run)."""
        kept = self._kept.get(outcome.job_id)
        return kept is not None and kept[0]["cloud"] != (outcome.cloud or None)

    def restore(self, paths: Paths, late: Outcome) -> dict[str, Any]:
        """Writes that undo what a ``late`` completion wrote ({} when nothing is kept)."""
        kept = self._kept.get(late.job_id)
        if kept is None:
            return {}
        fields, reply_to = kept
        return restore_writes(paths, late.job_id, fields, reply_to if late.replied else None)

    def __len__(self) -> int:
        return len(self._kept)
