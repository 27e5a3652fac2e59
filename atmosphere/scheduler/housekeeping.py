"""The dispatcher's timed duties: burying dead clouds, writing analytics, retention."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP, Database
from atmosphere.errors import DatabaseError
from atmosphere.jobs import JobSpec
from atmosphere.presence import DispatcherInfo
from atmosphere.scheduler import moves, retention
from atmosphere.scheduler.desk import Desk

# Fail a job the dispatcher gives up on: (its spec, the error, the cloud it died on).
DeadLetter = Callable[[JobSpec, dict[str, Any], str], None]

_log = logging.getLogger(__name__)


def silent_clouds(
    known: set[str], last_seen: dict[str, float], now: float, dead_after: float
) -> list[str]:
    """Clouds whose heartbeat has not changed for ``dead_after`` seconds of our clock (pure).

    A cloud first seen now starts its count now, so a restarted dispatcher gives every cloud a
    full ``dead_after`` before judging it.
    """
    dead = []
    for cloud_id in sorted(known):
        seen = last_seen.setdefault(cloud_id, now)
        if now - seen > dead_after:
            dead.append(cloud_id)
    return dead


def bury_dead_clouds(
    d: Desk, last_seen: dict[str, float], now: float, dead_letter: DeadLetter
) -> None:
    """Requeue the unfinished jobs of silent clouds (failing those that died too often).

    ``last_seen``: cloud id -> our monotonic time of its last heartbeat (a buried one leaves).
    """
    known = {k[0] for k in d.state.clouds} | set(d.state.inbox)
    for cloud_id in silent_clouds(known, last_seen, now, d.settings.dead_after):
        inbox = dict(d.state.inbox.get(cloud_id, {}))
        outcomes = {k[0]: o for k, o in d.state.outcomes.items() if k[0] in inbox}
        burial = moves.bury_writes(d.paths, cloud_id, inbox, outcomes, d.settings.max_deaths)
        _log.warning("cloud %s is silent; requeueing %d job(s)", cloud_id, len(burial.requeued))
        d.write(burial.writes)
        last_seen.pop(cloud_id, None)
        d.count("dead_clouds")
        for spec in burial.requeued:
            d.stats.count(d.now(), spec.type, "requeued")
        for spec in burial.doomed:
            _log.error(
                "job %s (%s): the cloud running it died %d times; failing it (CloudDied)",
                spec.id,
                spec.type,
                spec.deaths,
            )
            dead_letter(spec, moves.cloud_died_error(spec.deaths), cloud_id)
            d.count("cloud_died")


def write_stats(d: Desk) -> None:
    """Queue the analytics gathered since the last call."""
    now = d.now()
    for job_type, jobs in d.state.queue.items():
        d.stats.queue_depth(now, job_type, len(jobs))
    d.write(d.stats.writes(d.paths))


def presence_writes(d: Desk, me: str, started: float, epoch: int) -> dict[str, Any]:
    """Our record under ``live/dispatchers`` (``atmosphere status`` and the station show it)."""
    role = "leader" if d.is_leader() else "standby"
    info = DispatcherInfo(me, socket.gethostname(), os.getpid(), role, started, epoch=epoch)
    return {d.paths.dispatchers(me): {**info.to_json(), "heartbeat": SERVER_TIMESTAMP}}


def collect(d: Desk, db: Database, batch: int) -> bool:
    """One retention pass of at most ``batch`` deletions of each kind; True when there is more
    to delete right away."""
    try:
        now = d.now()
        jobs = retention.collect_jobs(db, d.paths, now, d.settings.retention, batch)
        minutes = retention.collect_stats(db, d.paths, now, d.settings.stats_retention, batch)
    except DatabaseError as exc:
        _log.warning("garbage collection failed: %s", exc)
        return False
    d.count("collected", jobs)
    return jobs >= batch or minutes >= batch
