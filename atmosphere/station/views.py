"""Pure view models of the control plane (``{root}/live``): what the station's pages show.

Every function here takes plain JSON (as read from the database) and returns plain JSON, so
the page, the JSON API and the tests all see the same shapes. What ``live/`` holds (clouds and
their condition, queue depths, dispatchers) is ``overview.summarize``, shared with ``atmosphere
status``; this module lays it out for the page. Malformed records are skipped, never raised:
one bad write must not blank the dashboard.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from atmosphere import overview
from atmosphere.cloud_state import CloudState
from atmosphere.db.tree import render
from atmosphere.errors import ConfigError
from atmosphere.jobs import InvalidRecord, JobSpec, payload
from atmosphere.overview import CloudRow, DispatcherRow, children
from atmosphere.schedules import Schedule
from atmosphere.types import JSON
from atmosphere.wiretime import parse_ms, render_ms, to_ms

# How many in-flight jobs the live snapshot lists (the jobs page shows them above history).
IN_FLIGHT_LIMIT = 50


def cloud_rows(
    clouds_raw: JSON,
    inbox_raw: JSON,
    now: float,
    dead_after: float,
    changed_at: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per registered cloud: capacity, load, current job, heartbeat age, dead or alive."""
    rows = overview.cloud_rows(clouds_raw, inbox_raw, now, dead_after, changed_at)
    return _cloud_json(rows, inbox_raw)


def _cloud_json(rows: list[CloudRow], inbox_raw: JSON) -> list[dict[str, Any]]:
    inbox = children(inbox_raw)
    out = []
    for row in rows:
        info, age = row.info, row.heartbeat_age
        out.append(
            {
                "id": info.id,
                "name": info.name,
                "host": info.host,
                "pid": info.pid,
                "types": list(row.types),
                "slots": info.slots,
                "lent": info.lent,
                "capacity": info.capacity,
                "held": row.held,
                "running": info.running,
                "load": round(info.load, 2),
                "state": str(row.state),
                "draining": info.state == "draining",
                "dead": not row.alive,
                "heartbeat": render_ms(info.heartbeat),
                "heartbeat_age": None if age is None else round(age, 1),
                "started": render_ms(info.started),
                "done": info.done,
                "failed": info.failed,
                "current": _current_jobs(children(inbox.get(info.id))),
            }
        )
    out.sort(key=lambda r: (not r["dead"], r["name"], r["id"]))
    return out


def _current_jobs(assigned: dict[str, Any], limit: int = 3) -> list[dict[str, Any]]:
    out = []
    for job_id in sorted(assigned)[:limit]:
        raw = assigned[job_id]
        job = raw if isinstance(raw, dict) else {}
        out.append(
            {
                "id": job_id,
                "type": str(job.get("type", "")),
                "name": str(job.get("name", "")),
                "assigned": job.get("assigned"),
                "attempt": job.get("attempt", 1),
            }
        )
    return out


def cloud_summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of clouds by condition, and slot usage, for the overview tiles."""
    alive = [r for r in rows if not r["dead"]]
    return {
        "total": len(rows),
        "up": len(alive),
        "dead": len(rows) - len(alive),
        "busy": sum(1 for r in alive if r["state"] == CloudState.BUSY),
        "idle": sum(1 for r in alive if r["state"] == CloudState.IDLE),
        "draining": sum(1 for r in alive if r["state"] == CloudState.DRAINING),
        "slots": sum(r["capacity"] for r in alive),
        "slots_used": sum(min(r["held"], r["capacity"]) for r in alive),
    }


def in_flight(queue_raw: JSON, inbox_raw: JSON, delayed_raw: JSON) -> list[dict[str, Any]]:
    """The newest queued, delayed and assigned jobs (ids sort by time), newest first."""
    found: list[dict[str, Any]] = []
    for job_type, jobs in children(queue_raw).items():
        entries = children(jobs)
        # nlargest, not sorted: a queue of 100,000 costs one pass per frame, not a sort.
        for job_id in heapq.nlargest(IN_FLIGHT_LIMIT, entries):
            found.append(_flight_row(job_id, entries[job_id], "queued", None, job_type))
    for cloud_id, jobs in children(inbox_raw).items():
        for job_id, raw in children(jobs).items():
            found.append(_flight_row(job_id, raw, "assigned", cloud_id, None))
    delayed = children(delayed_raw)
    for job_id in heapq.nlargest(IN_FLIGHT_LIMIT, delayed):
        found.append(_flight_row(job_id, delayed[job_id], "delayed", None, None))
    found.sort(key=lambda r: r["id"], reverse=True)
    return found[:IN_FLIGHT_LIMIT]


def _flight_row(
    job_id: str, raw: JSON, state: str, cloud: str | None, job_type: str | None
) -> dict[str, Any]:
    job = raw if isinstance(raw, dict) else {}
    return {
        "id": job_id,
        "type": str(job.get("type") or job_type or ""),
        "name": str(job.get("name") or ""),
        "state": state,
        "cloud": cloud,
        "submitted": job.get("submitted"),
        "attempt": job.get("attempt", 1),
        "eta": job.get("eta"),
    }


def next_fire(raw: dict[str, Any], name: str, now: float) -> tuple[int | None, str | None]:
    """When a schedule fires next (ms, for the page; a stored ``next`` wins) and how to say
    when it fires."""
    stored = render_ms(parse_ms(raw.get("next")))
    try:
        schedule = Schedule.from_json(raw, name)
        described = schedule.describe()
        if stored is not None:
            return stored, described
        upcoming = schedule.trigger().next_after(datetime.fromtimestamp(now, UTC))
    except (InvalidRecord, ValueError, ConfigError):
        return stored, None
    return (to_ms(upcoming.timestamp()) if upcoming else None), described


def schedule_rows(schedules_raw: JSON, now: float = 0) -> list[dict[str, Any]]:
    """One row per periodic schedule: when it fires, what it submits, whether it is paused."""
    rows = []
    for name, raw in sorted(children(schedules_raw).items()):
        if not isinstance(raw, dict):
            continue
        job = raw.get("job") if isinstance(raw.get("job"), dict) else {}
        assert isinstance(job, dict)
        upcoming, described = next_fire(raw, name, now) if now else (raw.get("next"), None)
        rows.append(
            {
                "name": name,
                "describe": described,
                "last_job": raw.get("last_job"),
                "cron": raw.get("cron"),
                "every": raw.get("every"),
                "tz": raw.get("tz"),
                "job": {
                    "type": job.get("type"),
                    "name": job.get("name"),
                    "data": render(job.get("data")),
                },
                "paused": raw.get("paused") is True,
                "misfire": raw.get("misfire"),
                "next": upcoming,
                "last": raw.get("last"),
                "run_now": raw.get("run_now"),
                "last_manual": raw.get("last_manual"),
            }
        )
    return rows


def dispatcher_rows(dispatchers_raw: JSON, lease_raw: JSON, now: float) -> dict[str, Any]:
    """The leader (from the lease) and every announced dispatcher, leader first."""
    return _leadership(overview.dispatcher_rows(dispatchers_raw, now), lease_raw, now)


def _leadership(dispatchers: list[DispatcherRow], lease_raw: JSON, now: float) -> dict[str, Any]:
    lease = lease_raw if isinstance(lease_raw, dict) else {}
    owner = lease.get("owner")
    expires = lease.get("expires")
    valid = (parse_ms(expires) or 0.0) > now
    rows = []
    for row in dispatchers:
        info, age = row.info, row.heartbeat_age
        rows.append(
            {
                "id": info.id,
                "host": info.host or None,  # the page shows "?" for an unknown host
                "pid": info.pid or None,
                "started": render_ms(info.started),
                "heartbeat": render_ms(info.heartbeat),
                "heartbeat_age": None if age is None else round(age, 1),
                "role": info.role,
                "leader": info.id == owner and valid,
            }
        )
    rows.sort(key=lambda r: (not r["leader"], str(r["id"])))
    return {
        "lease": {
            "owner": owner,
            "epoch": lease.get("epoch"),
            "expires": expires,
            "valid": valid,
        },
        "dispatchers": rows,
    }


def live_snapshot(
    live: JSON,
    now: float,
    dead_after: float,
    changed_at: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Everything the page shows from ``live/`` at ``now`` (seconds), in one JSON object (sent
    on every change; its times are ms, as stored, for the page's JavaScript)."""
    tree = children(live)
    view = overview.summarize(tree, now, dead_after, changed_at)
    clouds = _cloud_json(view.clouds, tree.get("inbox"))
    return {
        "now": to_ms(now),
        "dead_after": dead_after,
        "queues": view.queues,
        "queued": sum(view.queues.values()),
        "delayed": view.delayed,
        "assigned": view.in_flight,
        "chains": view.chains,
        "clouds": clouds,
        "cloud_summary": cloud_summary(clouds),
        "in_flight": in_flight(tree.get("queue"), tree.get("inbox"), tree.get("delayed")),
        "schedules": schedule_rows(tree.get("schedules"), now),
        "leadership": _leadership(view.dispatchers, tree.get("lease"), now),
    }


def job_row(job_id: str, raw: JSON) -> dict[str, Any]:
    """The compact form of ``jobs/{id}`` for lists."""
    job = raw if isinstance(raw, dict) else {}
    error = job.get("error") if isinstance(job.get("error"), dict) else None
    return {
        "id": job_id,
        "type": str(job.get("type") or ""),
        "name": str(job.get("name") or ""),
        "state": str(job.get("state") or "unknown"),
        "cloud": job.get("cloud"),
        "attempts": job.get("attempts") or job.get("attempt") or 0,
        "submitted": job.get("submitted"),
        "started": job.get("started"),
        "finished": job.get("finished"),
        "duration": _duration(job.get("started"), job.get("finished")),
        "latency": _duration(job.get("submitted"), job.get("finished")),
        "error": (error or {}).get("message") if error else None,
    }


def _duration(start: JSON, end: JSON) -> float | None:
    began, ended = parse_ms(start), parse_ms(end)
    if began is not None and ended is not None and ended >= began:
        return round(ended - began, 3)
    return None


def _payload(record: dict[str, Any], field: str) -> JSON:
    """Data and results travel encoded (``data_json``); shown decoded, as JSON."""
    try:
        return payload(record, field)
    except InvalidRecord:
        return record.get(f"{field}_json")


def _error(raw: JSON) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    value = _payload(raw, "value")
    shown = {k: v for k, v in raw.items() if k != "value_json"}
    return shown if value is None else {**shown, "value": value}


def job_detail(job_id: str, raw: JSON, live_chain: JSON = None) -> dict[str, Any]:
    """Everything about one job: its record, timings, and its chain's live state if any."""
    job = raw if isinstance(raw, dict) else {}
    detail = job_row(job_id, job)
    outcomes = job.get("outcomes")
    detail.update(
        {
            "data": _payload(job, "data"),
            "result": _payload(job, "result"),
            "error": _error(job.get("error")),
            "timeout": job.get("timeout"),
            "retries": job.get("retries", 0),
            "reply_to": job.get("reply_to"),
            "parent": job.get("parent"),
            "chain": job.get("chain") if isinstance(job.get("chain"), dict) else None,
            "assigned": job.get("assigned"),
            "outcomes": list(children(outcomes).values()) if outcomes else [],
            "late": job.get("late"),
            "record": job,
            "queue_wait": _duration(job.get("submitted"), job.get("assigned")),
        }
    )
    detail["live_chain"] = live_chain if isinstance(live_chain, dict) else None
    detail["actions"] = job_actions(detail["state"])
    return detail


def job_actions(state: str) -> list[str]:
    """Which operator actions make sense for a job in ``state``."""
    return ["retry", "discard"] if state == "failed" else []


def retry_spec(job_id: str, raw: JSON) -> dict[str, Any]:
    """The queue entry that retries a failed job: its JobSpec, first attempt, no assignment."""
    spec = JobSpec.from_json(raw, job_id)
    # Its clouds' deaths too start again: the operator gives it a full second chance.
    return spec.evolve(attempt=1, assigned=None, epoch=None, eta=None, deaths=0).to_json()
