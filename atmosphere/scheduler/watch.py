"""A queue that does not move: a job that waits far longer than routing should take is logged at
ERROR, with why (the clouds that could run it, as routing sees them).

Routing decides afresh every round, so a bug in it (or a fleet that cannot take a job) shows as
nothing at all: no error, just a queue that stays put. The short chaos run once stalled 60 s
with every cloud closed that way, silently. This makes such a stall say so.

It looks only at the first few jobs of each type's queue (the ones routing tries first), every
few seconds: nothing on the hot path.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

from atmosphere.jobs import JobSpec
from atmosphere.scheduler.assigning import cloud_loads
from atmosphere.scheduler.desk import Desk
from atmosphere.scheduler.routing import runs_alone
from atmosphere.scheduler.state import Change, LiveState

_log = logging.getLogger(__name__)

HEADS = 8  # jobs looked at per type: routing's first tries
EVERY = 5.0  # seconds between looks


def cloud_summary(state: LiveState, job_type: str) -> tuple[list[str], bool]:
    """How each cloud registered for ``job_type`` stands, as routing counts it
    (``assigning.cloud_loads``), and whether one that is up has room (pure)."""
    out = []
    room = False
    loads = cloud_loads(state, {}, now=0.0, dead_after=math.inf)  # liveness is not asked here
    for cloud_id, load in sorted(loads.items()):
        if job_type not in load.types:
            continue
        room = room or (load.up and not load.closed and not load.busy)
        out.append(
            f"{cloud_id} ({'up' if load.up else 'draining'}, holds {load.held} of {load.slots} "
            f"slots + {load.lent} lent{', closed: runs a job alone' if load.closed else ''})"
        )
    return out, room


def why_waiting(state: LiveState, spec: JobSpec, waited: float) -> tuple[int, str] | None:
    """(log level, message) for ``spec`` waiting ``waited`` seconds at the head of its queue, or
    None when that is no surprise: every cloud for its type is full, or a cloud holds the job
    itself (this is a copy: two retries, a hand-back crossing a requeue) (pure)."""
    if any(spec.id in jobs for jobs in state.inbox.values()):
        return None  # a copy of a job a cloud holds: it waits for that one to settle, by design
    clouds, room = cloud_summary(state, spec.type)
    head = f"job {spec.id} ({spec.type}) has waited {waited:.0f} s at the head of its queue"
    if not clouds:
        return logging.WARNING, f"{head}: no cloud is registered for type {spec.type}"
    listed = "; ".join(clouds)
    if runs_alone(spec.deaths):
        return (
            logging.WARNING,
            f"{head}; it runs alone (deaths > 0), so it needs an empty "
            f"cloud, and one is emptied for it only while none has a handler waiting on a "
            f"sub-job: {listed}",
        )
    if not room:
        return None
    return logging.ERROR, f"{head} while a cloud for its type has room (a routing bug?): {listed}"


class QueueWatch:
    """Logs each job that waits at the head of its queue for ``after`` seconds, and again every
    ``after`` seconds while it still waits (a dispatcher component)."""

    def __init__(self, after: float = 60.0, every: float = EVERY) -> None:
        self.after = after
        self.every = every
        self._next = 0.0
        self._since: dict[str, float] = {}  # job id -> when first seen among the heads
        self._told: dict[str, float] = {}

    def changed(self, changes: Sequence[Change]) -> None:
        """Nothing: it looks at the queue on its own clock."""

    def tick(self, desk: Desk, now: float) -> float | None:
        if now < self._next:
            return self._next
        self._next = now + self.every
        if not desk.is_leader():
            self._since.clear()  # a standby assigns nothing: its queue is not its to move
            self._told.clear()
            return self._next
        heads: dict[str, JobSpec] = {}
        for jobs in desk.state.queue.values():
            for spec in itertools.islice(jobs.values(), HEADS):
                heads[spec.id] = spec
        self._since = {job_id: self._since.get(job_id, now) for job_id in heads}
        self._told = {k: v for k, v in self._told.items() if k in heads}
        for job_id, since in self._since.items():
            if now - since < self.after or now - self._told.get(job_id, since) < self.after:
                continue
            self._told[job_id] = now
            verdict = why_waiting(desk.state, heads[job_id], now - since)
            if verdict is not None:
                _log.log(verdict[0], "%s", verdict[1])
        return self._next
