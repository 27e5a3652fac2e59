"""``atmosphere dispatcher`` on the embedded default heals a ``kill -9`` of its database.

Real processes: the dispatcher (which starts the embedded server), a cloud, and a maker here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atmosphere import Atmosphere
from atmosphere.db import embedded
from atmosphere.db.client import FirebaseDatabase
from atmosphere.settings import Settings
from tests.integration.conftest import FAST_ENV, ROOT, TASKS, CloudProcess
from tests.integration.dispatcher_support import READY
from tests.support import AtmosphereProcess, free_port, wait_until

pytestmark = pytest.mark.slow


def server_info(data_dir: Path) -> Any:
    """The server's own ``server.json`` (pid, port), or None."""
    try:
        return json.loads((data_dir / "server.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def answering_pid(data_dir: Path, port: int) -> int | None:
    """The pid of the server that answers on ``port`` for ``data_dir`` (None while down)."""
    info = server_info(data_dir)
    if not isinstance(info, dict) or info.get("port") != port:
        return None
    if not embedded.is_running(f"http://127.0.0.1:{port}", "atmosphere", timeout=0.5):
        return None
    pid: int = info["pid"]
    return pid


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AtmosphereProcess, Path, int]]:
    """A dispatcher with nothing configured (it starts the embedded server); (proc, dir, port)."""
    monkeypatch.delenv("ATMOSPHERE_DATABASE_URL", raising=False)
    port, data_dir = free_port(), tmp_path / "data"
    env = {**FAST_ENV, "ATMOSPHERE_DB_PORT": str(port), "ATMOSPHERE_DATA_DIR": str(data_dir)}
    dispatcher = AtmosphereProcess(
        ["dispatcher", "--no-station", "--log-level", "info"],
        ready=READY,
        env=env,
        cwd=tmp_path,
        what="the dispatcher",
    )
    try:
        yield dispatcher, data_dir, port
    finally:
        dispatcher.kill()
        info = server_info(data_dir)
        if isinstance(info, dict) and isinstance(info.get("pid"), int):
            try:  # the server outlives a kill -9 of its starter: do not leak it
                os.kill(info["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_killed_embedded_database_is_back_within_seconds_and_jobs_flow_again(
    fleet: tuple[AtmosphereProcess, Path, int],
) -> None:
    from tests.integration.jobs_tasks import make_app

    dispatcher, data_dir, port = fleet
    url = f"http://127.0.0.1:{port}?ns=atmosphere"
    cloud = CloudProcess(TASKS, url, name="c1")
    database = FirebaseDatabase(url)
    maker: Atmosphere = make_app(Settings.from_url(url, root=ROOT), database)
    try:
        # Given a job that ran end to end
        before = maker.tasks["echo"].submit(name="before", data={"n": 1}, timeout=20)
        assert before.get()["echo"] == {"n": 1}
        # When the embedded database is killed
        first = answering_pid(data_dir, port)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # Then the dispatcher that started it brings it back within seconds
        second = wait_until(
            lambda: (p := answering_pid(data_dir, port)) not in (None, first) and p,
            10,
            what="the embedded database is back",
        )
        assert second != first
        wait_until(lambda: "restarted" in dispatcher.log, 10, what="restart logged")
        assert f"(pid {first}) was killed by SIGKILL" in dispatcher.log
        # with what was acknowledged before the kill
        record = database.get(f"{ROOT}/jobs/{before.id}")
        assert record["state"] == "succeeded" and record["name"] == "before"
        # and a new job goes through dispatcher and cloud again
        after = maker.tasks["echo"].submit(name="after", data={"n": 2}, timeout=30)
        assert after.get()["echo"] == {"n": 2}
        assert cloud.alive() and dispatcher.alive()
    finally:
        maker.close()
        database.close()
        cloud.stop()
    # A clean stop of the dispatcher stops its server for good (no restart on the way out)
    assert dispatcher.stop(timeout=20) == 0, dispatcher.log
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert "Traceback" not in dispatcher.log, dispatcher.log
