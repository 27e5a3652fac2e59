"""Which ticks of a schedule are due, and the one update that fires a tick (pure).

A tick fires exactly once because (1) its job id is derived from (schedule, fire time), so
writing it twice writes the same record, and (2) the same update moves the schedule's ``last``
to the tick's fire time, and only ticks after ``last`` are ever due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import JobState
from atmosphere.paths import Paths
from atmosphere.rtdb.pushid import PUSH_CHARS
from atmosphere.schedules import Misfire, Schedule, anchor
from atmosphere.triggers import fire_times_between, utc
from atmosphere.wiretime import from_ms, to_ms


def due_ticks(schedule: Schedule, now: datetime) -> list[datetime]:
    """The fire times to write now, oldest first, after applying the misfire policy."""
    after = anchor(schedule)
    if schedule.paused or after is None:
        return []
    limit = schedule.catch_up_max if schedule.misfire is Misfire.CATCH_UP else 1
    times = fire_times_between(schedule.trigger(), utc(after), now, last=limit)
    if schedule.misfire is Misfire.SKIP:
        grace = timedelta(seconds=schedule.grace)
        times = [t for t in times if now - t <= grace]
    return times


def wants_manual_run(schedule: Schedule) -> bool:
    """True when an operator asked for a run that has not been fired yet."""
    return schedule.run_now is not None


def tick_id(schedule_name: str, fire: float) -> str:
    """The job id of a schedule's tick: sorts by fire time among push ids, names its schedule."""
    return f"{_push_time(to_ms(fire))}@{schedule_name}"


def manual_run_id(schedule_name: str, requested: float) -> str:
    """The job id of an operator's run-now request (schedule names contain no '@')."""
    return f"{_push_time(to_ms(requested))}@{schedule_name}@now"


def tick_update(
    paths: Paths,
    schedule: Schedule,
    fire: float,
    *,
    default_timeout: float,
    manual: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The job id and the multi-path update (relative to the database root) firing one tick.

    It writes the job record and the queue entry (as a maker's submit would) and moves the
    schedule's ``last`` (or clears ``run_now`` for a manual run) in the same atomic write.
    """
    job_id = manual_run_id(schedule.name, fire) if manual else tick_id(schedule.name, fire)
    spec = tick_job(schedule, job_id, fire, default_timeout=default_timeout)
    record = dict(spec, state=JobState.QUEUED.value)
    base = paths.schedules(schedule.name)
    update: dict[str, Any] = {
        paths.jobs(job_id): record,
        paths.queue(schedule.job.type, job_id): spec,
    }
    if manual:
        update[f"{base}/run_now"] = None
        update[f"{base}/last_manual"] = to_ms(fire)
    else:
        update[f"{base}/last"] = to_ms(fire)
        update[f"{base}/last_job"] = job_id
    return job_id, update


def tick_job(
    schedule: Schedule, job_id: str, fire: float, *, default_timeout: float
) -> dict[str, Any]:
    """The JobSpec JSON of a tick: fire-and-forget, named after the schedule."""
    job = schedule.job
    spec: dict[str, Any] = {
        "id": job_id,
        "type": job.type,
        "name": schedule.job_name,
        "timeout": job.timeout if job.timeout is not None else default_timeout,
        "submitted": SERVER_TIMESTAMP,
        "attempt": 1,
        "schedule": {"name": schedule.name, "fire": to_ms(fire)},
    }
    if job.data is not None:
        spec["data"] = job.data
    if job.retries:
        spec["retries"] = job.retries
    return spec


def fire_time(when: datetime) -> float:
    """A fire time as stored in ``last`` and encoded in the tick id: whole ms, in seconds."""
    return from_ms(to_ms(when.timestamp()))


def _push_time(ms: int) -> str:
    chars = []
    for _ in range(8):
        chars.append(PUSH_CHARS[ms % 64])
        ms //= 64
    return "".join(reversed(chars))
