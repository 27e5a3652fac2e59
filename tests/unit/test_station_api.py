"""The JSON API, the operator actions and the event stream, on MemoryDatabase."""

from __future__ import annotations

import json
import re

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import encode_json
from atmosphere.station.actions import ActionRefused, retry_update
from atmosphere.testing import MemoryDatabase
from tests.unit.station_helpers import PATHS, csrf, failed_record, station_client

XSS = {"html": "<script>alert(1)</script>", "img": "<img src=x onerror=alert(2)>"}


def test_retry_is_one_update_per_the_protocol() -> None:
    update = retry_update(
        PATHS, "j1", failed_record("j1", data=XSS, attempt=3, assigned=5, epoch=2)
    )
    assert update == {
        "atmosphere/jobs/j1/state": "queued",
        "atmosphere/jobs/j1/error": None,
        "atmosphere/jobs/j1/finished": None,
        "atmosphere/jobs/j1/deaths": None,
        "atmosphere/jobs/j1/first_finish": None,
        "atmosphere/live/queue/billing/j1": {
            "id": "j1",
            "type": "billing",
            "name": "user1",
            "data_json": encode_json(XSS),  # requeued in the wire form, exact
            "timeout": 30.0,
            "submitted": 1_000,
            "retries": 1,
            "retry_backoff": 1.0,
            "retry_backoff_max": 300.0,
            "attempt": 1,
        },
    }


def test_retry_refuses_jobs_that_are_not_failed() -> None:
    for record, status in ((None, 404), ({"type": "t", "state": "succeeded"}, 409)):
        try:
            retry_update(PATHS, "j", record)
        except ActionRefused as exc:
            assert exc.status == status
        else:
            raise AssertionError("retry accepted a job that is not failed")


def test_retry_and_discard_through_the_api() -> None:
    db = MemoryDatabase()
    db.update("", {PATHS.jobs("j1"): failed_record("j1"), PATHS.jobs("j2"): failed_record("j2")})
    with station_client(db) as client:
        headers = csrf(client)
        assert client.post("/api/jobs/j1/retry", headers=headers).json() == {"ok": True}
        job = db.get(PATHS.jobs("j1"))
        assert job["state"] == "queued" and "error" not in job
        assert db.get(PATHS.queue("billing", "j1"))["attempt"] == 1
        again = client.post("/api/jobs/j1/retry", headers=headers)
        assert again.status_code == 409 and "not failed" in again.json()["error"]
        assert client.post("/api/jobs/j2/discard", headers=headers).status_code == 200
        assert db.get(PATHS.jobs("j2/state")) == "discarded"
        assert client.post("/api/jobs/none/retry", headers=headers).status_code == 404
        assert client.post("/api/jobs/j2/explode", headers=headers).status_code == 404


def test_schedule_actions() -> None:
    db = MemoryDatabase()
    db.set(PATHS.schedules("nightly"), {"cron": "0 3 * * *", "job": {"type": "t"}, "paused": False})
    with station_client(db) as client:
        headers = csrf(client)
        assert client.post("/api/schedules/nightly/pause", headers=headers).status_code == 200
        assert db.get(PATHS.schedules("nightly/paused")) is True
        assert client.post("/api/schedules/nightly/resume", headers=headers).status_code == 200
        assert db.get(PATHS.schedules("nightly/paused")) is False
        assert client.post("/api/schedules/nightly/run", headers=headers).status_code == 200
        assert isinstance(db.get(PATHS.schedules("nightly/run_now")), int)  # a server timestamp
        assert client.post("/api/schedules/ghost/pause", headers=headers).status_code == 404
        assert db.get(PATHS.schedules("ghost")) is None  # no half-made schedule
    assert SERVER_TIMESTAMP == {".sv": "timestamp"}


def test_read_endpoints() -> None:
    db = MemoryDatabase()
    db.update(
        "",
        {
            PATHS.jobs("j1"): failed_record("j1", data=XSS),
            PATHS.clouds("c1"): {
                "name": "c1",
                "types": {"billing": True},
                "heartbeat": SERVER_TIMESTAMP,
            },
            PATHS.schedules("s"): {"every": 60, "job": {"type": "t"}},
            PATHS.lease: {"owner": "d1", "epoch": 1, "expires": 1},
            PATHS.stats("202611280400") + "/billing": {"succeeded": 3},
        },
    )
    with station_client(db) as client:
        assert client.get("/api/clouds").json()["clouds"][0]["id"] == "c1"
        assert client.get("/api/schedules").json()["schedules"][0]["name"] == "s"
        assert client.get("/api/dispatchers").json()["lease"]["owner"] == "d1"
        assert client.get("/api/jobs?state=failed").json()["jobs"][0]["id"] == "j1"
        assert client.get("/api/failed").json()["jobs"][0]["id"] == "j1"
        detail = client.get("/api/jobs/j1")
        assert detail.headers["content-type"].startswith("application/json")
        assert detail.json()["data"] == XSS  # raw in JSON; the page renders it as text
        assert client.get("/api/jobs/missing").status_code == 404
        assert "minutes" in client.get("/api/overview?window=15").json()
        assert client.get("/healthz").json()["ok"] is True


def test_event_stream_sends_live_then_stats_frames() -> None:
    db = MemoryDatabase()
    db.set(PATHS.queue("a", "j1"), {"type": "a", "name": "n"})
    with station_client(db) as client:
        body = client.get("/api/events?frames=2").text
    frames = [f for f in body.split("\n\n") if f.startswith("event:")]
    kinds = [f.split("\n")[0] for f in frames]
    assert kinds == ["event: live", "event: stats"]
    live = json.loads(frames[0].split("data: ", 1)[1])
    assert live["queues"] == {"a": 1} and live["in_flight"][0]["id"] == "j1"


def test_static_assets_are_packaged() -> None:
    with station_client(MemoryDatabase()) as client:
        for asset in ("/static/app.css", "/static/js/app.js", "/static/vendor/uPlot.iife.min.js"):
            assert client.get(asset).status_code == 200, asset
        page = client.get("/").text
        links = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert links and all(link.startswith(("/static/", "#")) for link in links), links
        # No inline script or handler: the CSP (script-src 'self') would block them anyway.
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
        assert not re.search(r"\son[a-z]+=", page)
