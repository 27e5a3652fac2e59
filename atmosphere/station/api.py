"""The station's JSON API, Server-Sent Events stream and Prometheus endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from atmosphere.errors import DatabaseError

from .actions import ActionRefused, discard_job, retry_job, run_now, set_paused
from .core import Station
from .jobs_query import JobFilter, chain_jobs, child_jobs, search_jobs
from .metrics import CONTENT_TYPE, render_metrics
from .series import build_series
from .views import job_detail

WINDOWS = (15, 60, 360, 1440)  # minutes the overview can show
LIVE_MIN_INTERVAL = 0.25  # s: at most four live frames a second, however busy the system
LIVE_MAX_INTERVAL = 2.0  # s: resend at least this often, so ages tick and dead clouds show
STATS_INTERVAL = 5.0  # s


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


def _window(request: Request) -> int:
    try:
        minutes = int(request.query_params.get("window", "60"))
    except ValueError:
        minutes = 60
    return minutes if minutes in WINDOWS else 60


def series_for(station: Station, minutes: int) -> dict[str, Any]:
    """Chart series for the last ``minutes`` minutes from the stats cache."""
    now = station.stats.now()
    return build_series(station.stats.minutes(), now - (minutes - 1) * 60, now)


def session(request: Request) -> JSONResponse:
    """What the page needs before its first request: the CSRF token and settings."""
    station = _station(request)
    return _json(
        {
            "csrf": station.keys.csrf,
            "root": station.paths.root,
            "dead_after": station.settings.dead_after,
            "windows": list(WINDOWS),
        }
    )


def live(request: Request) -> JSONResponse:
    """The whole live view model (clouds, queues, schedules, leadership, in-flight jobs)."""
    return _json(_station(request).live.snapshot())


def clouds(request: Request) -> JSONResponse:
    """Every registered cloud with its condition."""
    snap = _station(request).live.snapshot()
    return _json({"clouds": snap["clouds"], "summary": snap["cloud_summary"], "now": snap["now"]})


def schedules(request: Request) -> JSONResponse:
    """Every periodic schedule."""
    return _json({"schedules": _station(request).live.snapshot()["schedules"]})


def dispatchers(request: Request) -> JSONResponse:
    """The leader lease and every dispatcher."""
    return _json(_station(request).live.snapshot()["leadership"])


def overview(request: Request) -> JSONResponse:
    """Chart series and headline figures for a window (``?window=`` minutes)."""
    return _json(series_for(_station(request), _window(request)))


def jobs(request: Request) -> JSONResponse:
    """One page of jobs: ``?id= &type= &name= &state= &cursor= &limit=``."""
    station = _station(request)
    q = request.query_params
    flt = JobFilter(
        job_id=q.get("id", "").strip(),
        type=q.get("type", "").strip(),
        name=q.get("name", "").strip(),
        state=q.get("state", "").strip(),
    )
    try:
        page = search_jobs(station.db, station.paths, flt, q.get("cursor", ""), _limit(request))
    except DatabaseError as exc:
        return _json({"error": str(exc)}, 502)
    return _json(page)


def _limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit", "")
    return int(raw) if raw.isdigit() else default


def failed(request: Request) -> JSONResponse:
    """One page of failed (dead-letter) jobs: ``?cursor= &limit=``."""
    station = _station(request)
    cursor = request.query_params.get("cursor", "")
    try:
        page = search_jobs(
            station.db, station.paths, JobFilter(state="failed"), cursor, _limit(request)
        )
    except DatabaseError as exc:
        return _json({"error": str(exc)}, 502)
    return _json(page)


def job(request: Request) -> JSONResponse:
    """One job in full, with its chain steps and child jobs."""
    station = _station(request)
    job_id = request.path_params["job_id"]
    try:
        raw = station.db.get(station.paths.jobs(job_id))
    except DatabaseError as exc:
        return _json({"error": str(exc)}, 400)
    if not isinstance(raw, dict):
        return _json({"error": f"no job {job_id}"}, 404)
    chain_ref = raw.get("chain") if isinstance(raw.get("chain"), dict) else {}
    chain_id = chain_ref.get("id") if isinstance(chain_ref, dict) else None
    live_chain = station.live.get(f"chains/{chain_id}") if isinstance(chain_id, str) else None
    detail = job_detail(job_id, raw, live_chain)
    chain = detail.get("chain")
    detail["chain_jobs"] = (
        chain_jobs(station.db, station.paths, chain["id"]) if chain and chain.get("id") else []
    )
    detail["children"] = child_jobs(station.db, station.paths, job_id)
    return _json(detail)


def _act(action: Callable[[], None]) -> JSONResponse:
    try:
        action()
    except ActionRefused as exc:
        return _json({"ok": False, "error": exc.message}, exc.status)
    except DatabaseError as exc:
        return _json({"ok": False, "error": str(exc)}, 502)
    return _json({"ok": True})


def job_action(request: Request) -> JSONResponse:
    """POST /api/jobs/{id}/retry or /discard."""
    station = _station(request)
    job_id, verb = request.path_params["job_id"], request.path_params["verb"]
    if verb == "retry":
        return _act(lambda: retry_job(station.db, station.paths, job_id))
    if verb == "discard":
        return _act(lambda: discard_job(station.db, station.paths, job_id))
    return _json({"ok": False, "error": f"unknown action {verb}"}, 404)


def schedule_action(request: Request) -> JSONResponse:
    """POST /api/schedules/{name}/pause, /resume or /run."""
    station = _station(request)
    name, verb = request.path_params["name"], request.path_params["verb"]
    db, paths = station.db, station.paths
    actions: dict[str, Callable[[], None]] = {
        "pause": lambda: set_paused(db, paths, name, True),
        "resume": lambda: set_paused(db, paths, name, False),
        "run": lambda: run_now(db, paths, name),
    }
    if verb not in actions:
        return _json({"ok": False, "error": f"unknown action {verb}"}, 404)
    return _act(actions[verb])


def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    station = _station(request)
    text = render_metrics(station.live.snapshot(), station.stats.totals(), station.stats.recent(5))
    return Response(text, media_type=CONTENT_TYPE)


def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers and whether its database stream is up."""
    return _json({"ok": True, "connected": _station(request).live.connected})


def sse_frame(event: str, data: Any) -> str:
    """One Server-Sent Events frame (JSON data on a single line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def events(request: Request) -> StreamingResponse:
    """The live stream: ``live`` frames on every change, ``stats`` frames every few seconds."""
    station = _station(request)
    minutes = _window(request)
    frames = request.query_params.get("frames", "0")
    limit = int(frames) if frames.isdigit() else 0  # tests: end the stream after N frames
    return StreamingResponse(
        _event_frames(station, minutes, limit),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _event_frames(station: Station, minutes: int, limit: int) -> AsyncIterator[str]:
    # StreamingResponse cancels this generator when the client disconnects.
    changed = station.live.subscribe()
    sent = 0
    last_stats = 0.0
    stats_sent_loaded = False
    try:
        yield "retry: 2000\n\n"
        while not station.closing.is_set():
            changed.clear()
            yield f"event: live\ndata: {station.live.snapshot_json()}\n\n"
            sent += 1
            # Stats go out every few seconds, and as soon as the first window read lands.
            if time.monotonic() - last_stats >= STATS_INTERVAL or (
                not stats_sent_loaded and station.stats.loaded
            ):
                stats_sent_loaded = station.stats.loaded
                last_stats = time.monotonic()
                yield sse_frame("stats", series_for(station, minutes))
                sent += 1
            if limit and sent >= limit:
                return
            await asyncio.sleep(LIVE_MIN_INTERVAL)  # throttle: coalesce bursts of changes
            try:
                await asyncio.wait_for(changed.wait(), LIVE_MAX_INTERVAL - LIVE_MIN_INTERVAL)
            except TimeoutError:
                pass  # nothing changed: resend anyway so heartbeat ages tick
    finally:
        station.live.unsubscribe(changed)


def routes() -> list[Route]:
    """Every API route."""
    return [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/session", session),
        Route("/api/live", live),
        Route("/api/overview", overview),
        Route("/api/clouds", clouds),
        Route("/api/schedules", schedules),
        Route("/api/dispatchers", dispatchers),
        Route("/api/jobs", jobs),
        Route("/api/failed", failed),
        Route("/api/jobs/{job_id}", job),
        Route("/api/jobs/{job_id}/{verb}", job_action, methods=["POST"]),
        Route("/api/schedules/{name}/{verb}", schedule_action, methods=["POST"]),
        Route("/api/events", events),
    ]
