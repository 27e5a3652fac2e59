"""Operator actions, written straight to the database as the protocol says (one update each)."""

from __future__ import annotations

from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP, Database
from atmosphere.jobs import InvalidRecord
from atmosphere.paths import Paths

from .views import retry_spec


class ActionRefused(Exception):
    """An action that does not apply to the record's current state (HTTP 404 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def retry_update(paths: Paths, job_id: str, record: Any) -> dict[str, Any]:
    """The root-relative multi-path update that puts a failed job back in its queue."""
    _require_failed(job_id, record)
    try:
        spec = retry_spec(job_id, record)
    except InvalidRecord as exc:
        raise ActionRefused(409, f"job {job_id} cannot be requeued: {exc}") from None
    job = paths.jobs(job_id)
    return {
        f"{job}/state": "queued",
        f"{job}/error": None,
        f"{job}/finished": None,  # retention collects by it: only for finished jobs
        f"{job}/deaths": None,
        paths.queue(spec["type"], job_id): spec,
    }


def discard_update(paths: Paths, job_id: str, record: Any) -> dict[str, Any]:
    """The update that marks a failed job as discarded (kept for inspection, never retried)."""
    _require_failed(job_id, record)
    return {f"{paths.jobs(job_id)}/state": "discarded"}


def _require_failed(job_id: str, record: Any) -> None:
    if not isinstance(record, dict):
        raise ActionRefused(404, f"no job {job_id}")
    if record.get("state") != "failed":
        raise ActionRefused(409, f"job {job_id} is {record.get('state')}, not failed")


def retry_job(db: Database, paths: Paths, job_id: str) -> None:
    """Requeue a failed job: state queued, error removed, its JobSpec back in the queue."""
    record = db.get(paths.jobs(job_id))
    db.update("", retry_update(paths, job_id, record))


def discard_job(db: Database, paths: Paths, job_id: str) -> None:
    """Mark a failed job discarded."""
    record = db.get(paths.jobs(job_id))
    db.update("", discard_update(paths, job_id, record))


def _require_schedule(db: Database, paths: Paths, name: str) -> None:
    if not isinstance(db.get(paths.schedules(name), shallow=True), dict):
        raise ActionRefused(404, f"no schedule {name}")


def set_paused(db: Database, paths: Paths, name: str, paused: bool) -> None:
    """Pause or resume a schedule."""
    _require_schedule(db, paths, name)
    db.set(f"{paths.schedules(name)}/paused", paused)


def run_now(db: Database, paths: Paths, name: str) -> None:
    """Ask the leading dispatcher to fire a schedule now."""
    _require_schedule(db, paths, name)
    db.set(f"{paths.schedules(name)}/run_now", SERVER_TIMESTAMP)
