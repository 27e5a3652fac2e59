"""How one attempt of a job ends, on the wire: what a ``Finish`` (a record of ``jobs.py``,
named here too) means for the job (``judge``), the finish as it travels once judged
(``judged``), and the ONE update that records it (``completion_writes``; docs/protocol.md, "The
hot path"). Pure.

A cloud writes this update when a handler ends (``worker/execution.py`` builds its
``Finish``); the dispatcher rebuilds it to keep a job's first finish (``scheduler/firsts.py``).
It lives in neither, so the dispatcher and the cloud runtime never import each other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from .db.base import SERVER_TIMESTAMP
from .jobs import Finish, JobSpec, JobState, Outcome, Reply
from .paths import Paths
from .types import JSON


@dataclass(frozen=True)
class Verdict:
    """What an attempt's end means: a final answer, or another attempt."""

    ok: bool
    final: bool
    state: JobState


# Failures another attempt would repeat: no task for the type here, or a result the database
# refuses (the same handler on the same data returns the same thing).
_FINAL_KINDS = ("UnknownTaskType", "InvalidResult")


def judge(spec: JobSpec, finish: Finish) -> Verdict:
    """Final success, final failure (no attempt left, or one that cannot help), or a retry."""
    if finish.ok:
        return Verdict(ok=True, final=True, state=JobState.SUCCEEDED)
    kind = (finish.error or {}).get("kind")
    if spec.attempt <= spec.retries and kind not in _FINAL_KINDS:
        return Verdict(ok=False, final=False, state=JobState.RETRYING)
    return Verdict(ok=False, final=True, state=JobState.FAILED)


def judged(finish: Finish, verdict: Verdict) -> Finish:
    """The finish as it travels once judged: a retry asked with no attempt left says so in its
    error, a delay goes only with another attempt, and the ask itself stays here."""
    if not finish.retry_asked and (finish.retry_delay is None or not verdict.final):
        return finish  # the common end: nothing to fold in (no copy on the hot path)
    error = finish.error
    if error is not None and finish.retry_asked and verdict.final:
        error = {**error, "message": f"{error['message']} (retry asked, but no attempt is left)"}
    delay = finish.retry_delay if not verdict.final else None
    return replace(finish, error=error, retry_asked=False, retry_delay=delay)


def completion_writes(
    paths: Paths,
    *,
    cloud_id: str,
    spec: JobSpec,
    finish: Finish,
    started: float,
    verdict: Verdict | None = None,
) -> dict[str, JSON]:
    """The one update (relative to the root) that completes an attempt (docs/protocol.md).

    ``verdict``: ``judge(spec, finish)`` if the caller has it already (the cloud judges each
    finish once). The cloud adds its whole record (``live/clouds/{cloudId}``) with the new
    counters.
    """
    if verdict is None:
        verdict = judge(spec, finish)
    replies = verdict.final and spec.reply_to is not None and spec.chain is None
    travels = judged(finish, verdict)
    error = travels.error
    outcome = Outcome.of(
        spec, travels, cloud=cloud_id, final=verdict.final, replied=replies, started=started
    ).to_json()
    outcome["finished"] = SERVER_TIMESTAMP
    inbox, outcomes, jobs, replies_to = _prefixes(paths)
    job = f"{jobs}{spec.id}"
    writes: dict[str, JSON] = {
        f"{inbox}{cloud_id}/{spec.id}": None,
        f"{outcomes}{spec.id}": outcome,
        f"{job}/state": str(verdict.state),
        f"{job}/started": outcome["started"],
        # Only a finished job has a finish time: retention collects by it.
        f"{job}/finished": SERVER_TIMESTAMP if verdict.final else None,
        f"{job}/cloud": cloud_id,
    }
    # Kept beside an error too (done_with); encoded, so it is stored exactly as returned (the
    # outcome's copy: the same result, encoded once, for the reply too).
    result_json = outcome.get("result_json")
    writes[f"{job}/result_json"] = result_json
    if not finish.ok:
        writes[f"{job}/error"] = error
    if replies and spec.reply_to is not None:
        reply = Reply(ok=finish.ok, job=spec.id, result=finish.result, error=error)
        writes[f"{replies_to}{spec.reply_to}/{spec.id}"] = reply.to_json(result_json)
    return writes


@functools.lru_cache(maxsize=16)
def _prefixes(paths: Paths) -> tuple[str, str, str, str]:
    """Where a completion writes, relative to the root, each path up to the ids that follow
    (inbox, outcomes, jobs, replies): spelled by ``paths`` once, not per completion (ids are
    single keys, never empty)."""

    def rel(place: str) -> str:
        return f"{paths.rel(place)}/"

    return rel(paths.inbox()), rel(paths.outcomes()), rel(paths.jobs()), rel(paths.replies())
