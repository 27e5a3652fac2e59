"""Shared helpers for the Weather Station unit tests: an app on MemoryDatabase and a client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from atmosphere.paths import Paths
from atmosphere.settings import Settings
from atmosphere.station.app import create_app
from atmosphere.testing import MemoryDatabase

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; plain httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:3000"
ORIGIN = {"origin": BASE}
PATHS = Paths("atmosphere")


@contextmanager
def station_client(
    db: MemoryDatabase, settings: Settings | None = None, base_url: str = BASE
) -> Iterator[TestClient]:
    """A running station (lifespan started) on ``db``, reached as ``base_url``."""
    app = create_app(settings or Settings(), db)
    with TestClient(app, base_url=base_url, follow_redirects=False) as client:
        yield client


def csrf(client: TestClient) -> dict[str, str]:
    """Headers a same-origin page sends with a POST: Origin and the CSRF token."""
    token = client.get("/api/session").json()["csrf"]
    return {**ORIGIN, "x-csrf-token": token}


def failed_record(job_id: str, job_type: str = "billing", **extra: Any) -> dict[str, Any]:
    """A failed job record as the protocol stores it."""
    return {
        "id": job_id,
        "type": job_type,
        "name": "user1",
        "data": {"n": 1},
        "timeout": 30,
        "submitted": 1_000,
        "state": "failed",
        "attempts": 2,
        "retries": 1,
        "cloud": "c1",
        "error": {"kind": "error", "message": "boom", "type": "ValueError", "traceback": "tb"},
        **extra,
    }
