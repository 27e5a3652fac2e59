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
        f"{job}/first_finish": None,  # the dispatcher's memory of the finish this retry undoes
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


def _split(
    paths: Paths, job_id: str, update: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the fields an update sets in the job's record, the rest of the update)."""
    prefix = paths.jobs(job_id) + "/"
    fields = {k[len(prefix) :]: v for k, v in update.items() if k.startswith(prefix)}
    rest = {k: v for k, v in update.items() if not k.startswith(prefix)}
    return fields, rest


def _changed(record: Any, fields: dict[str, Any]) -> dict[str, Any]:
    out = {**record, **fields}
    return {k: v for k, v in out.items() if v is not None}


def retry_job(db: Database, paths: Paths, job_id: str) -> None:
    """Requeue a failed job, once: state queued, error removed, its JobSpec back in the queue.

    The record leaves ``failed`` in a transaction, so a second retry (a double click, or one
    that read the record before a fast re-failure) finds it no longer failed and is refused
    instead of queueing the job again while it runs. The queue entry follows in a second
    write (one write cannot be both conditional and span two paths); if that write fails
    the record is put back as it was, so the job is never left queued with no entry.
    """
    before: list[Any] = []
    rest: dict[str, Any] = {}

    def requeue(record: Any) -> Any:
        fields, others = _split(paths, job_id, retry_update(paths, job_id, record))
        before[:] = [record]
        rest.clear()
        rest.update(others)
        return _changed(record, fields)

    db.transaction(paths.jobs(job_id), requeue)
    try:
        db.update("", rest)
    except Exception:
        db.set(paths.jobs(job_id), before[0])
        raise


def discard_job(db: Database, paths: Paths, job_id: str) -> None:
    """Mark a failed job discarded (in a transaction: never a job a retry requeued meanwhile)."""

    def discard(record: Any) -> Any:
        fields, _ = _split(paths, job_id, discard_update(paths, job_id, record))
        return _changed(record, fields)

    db.transaction(paths.jobs(job_id), discard)


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
