"""Which queued jobs go to which clouds in one round: FIFO per type, least loaded first (pure)."""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterator, Mapping

from atmosphere.jobs import JobSpec
from atmosphere.scheduler.fifo import FifoJobs
from atmosphere.scheduler.routing import (
    CloudLoad,
    closes,
    cloud_to_empty,
    pick_cloud,
    runs_alone,
)
from atmosphere.scheduler.state import LiveState


def cloud_loads(
    state: LiveState, last_seen: Mapping[str, float], now: float, dead_after: float
) -> dict[str, CloudLoad]:
    """Every registered cloud as routing sees it: our inbox count, its state, alive or not."""
    loads = {}
    for key, info in state.clouds.items():
        cloud_id = key[0]
        seen = last_seen.get(cloud_id, now)
        loads[cloud_id] = CloudLoad(
            id=cloud_id,
            types=info.types,
            slots=info.slots,
            lent=info.lent,
            load=info.load,
            held=state.held(cloud_id),
            up=info.state == "up",
            alive=now - seen <= dead_after,
            closed=closes(
                any(runs_alone(s.deaths) for s in state.inbox.get(cloud_id, {}).values()),
                info.lent,
            ),
        )
    return loads


def held_jobs(state: LiveState) -> set[str]:
    """The ids of every job in some cloud's inbox."""
    return {job_id for jobs in state.inbox.values() for job_id in jobs}


def plan(
    queue: Mapping[str, Mapping[str, JobSpec]],
    loads: dict[str, CloudLoad],
    held: Container[str] = frozenset(),
) -> Iterator[tuple[JobSpec, str]]:
    """(job, cloud id) pairs to assign now: oldest job first across types, FIFO within a type.

    A type stops at its first job no cloud can take (the jobs behind it could go nowhere either).
    ``loads`` is updated as jobs are placed, so no cloud is ever filled past its capacity.
    A queued job that some cloud already ``held`` waits: it is a copy (two operators retried it,
    a hand-back crossed a requeue), and settling the held one drops or replaces it. A job that
    outlived a cloud runs alone (``routing.runs_alone``): on an empty cloud, which then takes
    nothing more. With none empty it waits without holding up its type, and one cloud per
    round (``routing.cloud_to_empty``) is given nothing more so that it empties for the oldest
    such job: a dead cloud's jobs all run alone, and emptying a cloud for each of them closed
    the whole fleet, whose handlers waiting on jobs of their own then waited for good.
    """
    heads: list[tuple[str, str, Iterator[str]]] = []
    for job_type, jobs in queue.items():
        if jobs and any(c.eligible_for(job_type) for c in loads.values()):
            walk = _oldest_first(jobs)
            first = next(walk, None)
            if first is not None:
                heads.append((first, job_type, walk))
    heapq.heapify(heads)
    emptying = False
    while heads:
        job_id, job_type, walk = heapq.heappop(heads)
        spec = queue.get(job_type, {}).get(job_id)
        alone = spec is not None and runs_alone(spec.deaths)
        cloud = pick_cloud(loads.values(), job_type, alone=alone)
        if cloud is None:
            if not alone:
                continue
            if not emptying:
                emptied = cloud_to_empty(loads.values(), job_type)
                if emptied is not None:
                    loads[emptied.id] = emptied.holding(emptied.held, close=True)
                emptying = True
        elif spec is not None and job_id not in held:
            loads[cloud.id] = cloud.holding(cloud.held + 1, close=closes(alone, cloud.lent))
            yield spec, cloud.id
        following = next(walk, None)
        if following is not None:
            heapq.heappush(heads, (following, job_type, walk))


def _oldest_first(jobs: Mapping[str, JobSpec]) -> Iterator[str]:
    # The dispatcher's queues are FifoJobs, kept in order; anything else is sorted here.
    return iter(jobs) if isinstance(jobs, FifoJobs) else iter(sorted(jobs))
