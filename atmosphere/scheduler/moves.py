"""Writes that move jobs between places in ``live/``: assign, requeue, release (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import JobSpec, JobState, Outcome
from atmosphere.paths import Paths
from atmosphere.scheduler.settlement import queue_entry
from atmosphere.wiretime import from_ms


def assignment(
    spec: JobSpec, queued: Any, epoch: int, now_ms: int
) -> tuple[JobSpec, dict[str, Any]]:
    """``spec``'s inbox entry, assigned at ``now_ms`` (our clock) under ``epoch``: as parsed, and
    as written. ``queued``: its queue entry as stored, which the entry copies (the job's data is
    not encoded again) when it parses to ``spec``.

    The first is exactly what parsing the second gives back, so the dispatcher's view takes it
    as parsed. ``assigned`` is the dispatcher's clock, not a server timestamp: only clouds read
    it, to tell one assignment from the next (worker/inbox.py), and a value the server leaves as
    written comes back on the stream equal to the one we applied, costing a comparison, not a
    parse. The job record's ``assigned`` stays server time.
    """
    if isinstance(queued, dict) and queued.get("type") == spec.type:
        entry = {k: v for k, v in queued.items() if k != "eta"}
        # The fields every entry spells (as to_json writes them), whatever the queue entry left out.
        entry.update(id=spec.id, name=spec.name, timeout=spec.timeout, attempt=spec.attempt)
        entry["assigned"] = now_ms
        entry["epoch"] = epoch
        return spec.evolve(eta=None, assigned=from_ms(now_ms), epoch=epoch), entry
    # A queue entry stored under another type's queue: written from the spec, which the
    # entry's fields then spell whole (without retries it leaves the backoff out: the default).
    backoff = {} if spec.retries else {"retry_backoff": 1.0, "retry_backoff_max": 300.0}
    assigned = spec.evolve(eta=None, assigned=from_ms(now_ms), epoch=epoch, **backoff)
    return assigned, assigned.to_json()


def assign_writes(
    paths: Paths, spec: JobSpec, entry: dict[str, Any], cloud_id: str
) -> dict[str, Any]:
    """Move a queued job into a cloud's inbox (``entry``: its ``assignment``) and note it in the
    job record (one update)."""
    record = paths.jobs(spec.id)
    return {
        paths.queue(spec.type, spec.id): None,
        paths.inbox(cloud_id, spec.id): entry,
        f"{record}/state": JobState.ASSIGNED.value,
        f"{record}/cloud": cloud_id,
        f"{record}/attempts": spec.attempt,
        f"{record}/assigned": SERVER_TIMESTAMP,
    }


@dataclass
class Burial:
    """What burying a dead cloud writes, and what became of the jobs it held."""

    writes: dict[str, Any] = field(default_factory=dict)
    requeued: list[JobSpec] = field(default_factory=list)  # back in the queue, one death more
    doomed: list[JobSpec] = field(default_factory=list)  # died ``max_deaths`` times: fail them


def bury_writes(
    paths: Paths,
    cloud_id: str,
    inbox: Mapping[str, JobSpec],
    outcomes: Mapping[str, Outcome],
    max_deaths: int,
) -> Burial:
    """Forget a dead cloud and put its unfinished jobs back in the queue, keeping their ids.

    Every job it held counts a death: a job that keeps killing its cloud (OOM, segfault,
    ``os._exit``) would otherwise go round the fleet for ever. At ``max_deaths`` it is doomed
    instead: the caller settles it as a dead letter.
    """
    # Entry by entry, never the whole inbox: if we were deposed since our view, this write may
    # land after the new leader assigned more jobs to the same cloud id, and must not take them.
    burial = Burial({paths.clouds(cloud_id): None})
    for job_id, spec in inbox.items():
        burial.writes[paths.inbox(cloud_id, job_id)] = None
        if job_id in outcomes:
            continue  # it finished; settling the outcome takes care of it
        died = spec.evolve(deaths=spec.deaths + 1)
        record = paths.jobs(job_id)
        burial.writes[f"{record}/deaths"] = died.deaths
        if died.deaths >= max_deaths:
            burial.doomed.append(died)
            continue
        burial.writes[paths.queue(spec.type, job_id)] = queue_entry(died)
        burial.writes[f"{record}/state"] = JobState.QUEUED.value
        burial.writes[f"{record}/cloud"] = None
        burial.requeued.append(died)
    return burial


def cloud_died_error(deaths: int) -> dict[str, Any]:
    """The dead letter's error for a job whose clouds kept dying while they held it."""
    times = "once" if deaths == 1 else f"{deaths} times"
    return {
        "kind": "CloudDied",
        "message": f"the cloud running it died {times}",
        "type": "CloudDied",
    }


def release_writes(paths: Paths, spec: JobSpec) -> dict[str, Any]:
    """A delayed job whose time has come goes back to its queue, at its FIFO place (by id)."""
    return {
        paths.delayed(spec.id): None,
        paths.queue(spec.type, spec.id): queue_entry(spec),
        f"{paths.jobs(spec.id)}/state": JobState.QUEUED.value,
    }
