"""The station as the dispatcher serves it, with a real cloud running real jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from atmosphere import Atmosphere
from atmosphere.db.client import FirebaseDatabase
from atmosphere.settings import Settings
from tests.support import ServerProcess, free_port, unique_ns, wait_until

pytestmark = pytest.mark.browser


class System:
    """A dispatcher (serving the station) and one cloud on a fresh namespace."""

    def __init__(self, url: str, station_url: str, db: FirebaseDatabase) -> None:
        self.url = url
        self.station_url = station_url
        self.db = db


@pytest.fixture(scope="module")
def system(db_server: ServerProcess) -> Iterator[System]:
    url = db_server.db_url(unique_ns("disp"))
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "atmosphere"]
    procs = [
        subprocess.Popen(
            [
                *cmd,
                "dispatcher",
                "--db-url",
                url,
                "--station-port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                *cmd,
                "cloud",
                "atmosphere.demo.tasks",
                "--db-url",
                url,
                "--name",
                "rain-1",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    db = FirebaseDatabase(url)
    try:
        yield System(url, f"http://127.0.0.1:{port}", db)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        db.close()


def test_a_job_runs_and_the_station_follows_it(system: System, page: Any, shot: Any) -> None:
    def station_up() -> bool:
        try:
            return page.request.get(f"{system.station_url}/healthz").ok is True
        except Exception:  # not listening yet
            return False

    wait_until(station_up, 30, interval=0.2, what="the dispatcher serves the station")
    page.goto(f"{system.station_url}/#/clouds")
    page.wait_for_selector("#clouds-table tr >> text=rain-1", timeout=30_000)
    page.goto(f"{system.station_url}/#/jobs")
    page.wait_for_selector("#conn.live")
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    app = Atmosphere(settings=Settings.from_url(system.url), database=system.db)
    handle = app.submit({"type": "syncUser", "name": name, "data": {}}, callback=lambda e, r: None)
    row = f"#jobs-table tr[data-job='{handle.id}']"
    page.wait_for_selector(f"{row} >> text=succeeded", timeout=20_000)
    assert "rain-1" in page.inner_text(row)  # the cloud's name, not its push id
    page.click(f"{row} td:first-child")
    page.wait_for_selector("pre.code >> text=synced")  # the result, rendered as JSON
    page.goto(f"{system.station_url}/#/dispatchers")
    page.wait_for_selector("#dispatchers-table >> text=leader")
    shot(page, "e2e-dispatchers")
    page.goto(f"{system.station_url}/#/overview")
    page.locator(".uplot canvas").nth(3).wait_for()
    page.wait_for_selector("#health")
    shot(page, "e2e-overview")
