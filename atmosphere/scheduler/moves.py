"""Writes that move jobs between places in ``live/``: assign, requeue, release (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import JobSpec, JobState, Outcome
from atmosphere.paths import Paths
from atmosphere.scheduler.settle import queue_entry


def assign_writes(paths: Paths, spec: JobSpec, cloud_id: str, epoch: int) -> dict[str, Any]:
    """Move a queued job into a cloud's inbox and note it in the job record (one update)."""
    entry = spec.evolve(eta=None).to_json()
    entry["assigned"] = SERVER_TIMESTAMP
    entry["epoch"] = epoch
    record = paths.jobs(spec.id)
    return {
        paths.queue(spec.type, spec.id): None,
        paths.inbox(cloud_id, spec.id): entry,
        f"{record}/state": JobState.ASSIGNED.value,
        f"{record}/cloud": cloud_id,
        f"{record}/attempts": spec.attempt,
        f"{record}/assigned": SERVER_TIMESTAMP,
    }


def requeue_dead_cloud_writes(
    paths: Paths,
    cloud_id: str,
    inbox: Mapping[str, JobSpec],
    outcomes: Mapping[str, Outcome],
) -> tuple[dict[str, Any], list[JobSpec]]:
    """Forget a dead cloud and put its unfinished jobs back in the queue, keeping their ids."""
    writes: dict[str, Any] = {paths.clouds(cloud_id): None, paths.inbox(cloud_id): None}
    requeued = []
    for job_id, spec in inbox.items():
        if job_id in outcomes:
            continue  # it finished; settling the outcome takes care of it
        writes[paths.queue(spec.type, job_id)] = queue_entry(spec)
        writes[f"{paths.jobs(job_id)}/state"] = JobState.QUEUED.value
        writes[f"{paths.jobs(job_id)}/cloud"] = None
        requeued.append(spec)
    return writes, requeued


def release_writes(paths: Paths, spec: JobSpec) -> dict[str, Any]:
    """A delayed job whose time has come goes back to its queue, at its FIFO place (by id)."""
    return {
        paths.delayed(spec.id): None,
        paths.queue(spec.type, spec.id): queue_entry(spec),
        f"{paths.jobs(spec.id)}/state": JobState.QUEUED.value,
    }
