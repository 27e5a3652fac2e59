"""Clouds and makers ride out a database restart by themselves (real processes)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from atmosphere.db.client import FirebaseDatabase
from atmosphere.settings import Settings
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until
from tests.integration.jobs_tasks import make_app
from tests.support import ServerProcess, start_db_server

pytestmark = pytest.mark.slow


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """A private server this test restarts; the list holds every process started."""
    servers = [start_db_server(tmp_path / "data", extra_args=["--keep-alive", "0.5"])]
    yield servers
    for server in servers:
        if server.proc.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.kill()


def test_a_job_running_while_the_database_restarts_still_answers(
    own_server: list[ServerProcess], tmp_path: Path
) -> None:
    server = own_server[0]
    url = server.db_url("reconnect")
    dispatcher = DispatcherProcess(
        url, ROOT, {"ATMOSPHERE_HEARTBEAT_INTERVAL": "0.25", "ATMOSPHERE_DEAD_AFTER": "5"}
    )
    cloud = CloudProcess("tests.integration.jobs_tasks", url, name="c1")
    database = FirebaseDatabase(url)
    maker = make_app(Settings.from_url(url), database)
    try:
        assert maker.tasks["echo"].submit(data=0, timeout=20).get()["echo"] == 0
        gate = tmp_path / "open"
        handle = maker.tasks["gate"].submit(data=str(gate), timeout=60)
        wait_until(
            lambda: database.get(f"{ROOT}/live/clouds/{cloud.cloud_id}/running") == 1, 20, "running"
        )
        server.kill()  # kill -9: the job finishes while the database is down
        gate.touch()
        wait_until(lambda: "completion of" in cloud.log, 20, "the cloud retries its completion")
        restarted = start_db_server(
            server.data_dir, extra_args=["--keep-alive", "0.5", "--port", str(server.port)]
        )
        own_server.append(restarted)
        assert handle.get()["pid"] == cloud.pid
        # Everything is connected again: a new job goes round the whole loop.
        assert maker.tasks["echo"].submit(data=1, timeout=30).get()["echo"] == 1
        assert cloud.proc.poll() is None and dispatcher.alive()
    finally:
        maker.close()
        database.close()
        cloud.kill()
        dispatcher.kill()
