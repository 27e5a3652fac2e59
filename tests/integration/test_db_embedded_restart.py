"""A killed embedded server comes back by itself, with its data, on the same port.

Real server processes started through ``connect(start_embedded=True)``, as the dispatcher does.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path

import pytest

from atmosphere import Atmosphere
from atmosphere.db import embedded
from atmosphere.db.client import FirebaseDatabase
from atmosphere.db.connect import connect
from atmosphere.db.supervisor import Supervisor
from atmosphere.errors import SubmitFailed
from atmosphere.settings import Settings
from tests.support import free_port, wait_until

NS = "atmosphere"


def server_pid(data_dir: Path) -> int | None:
    """The pid in server.json when a server answers for it (None while it is down)."""
    info = embedded.read_info(data_dir)
    if not isinstance(info, dict):
        return None
    if not embedded.is_running(f"http://127.0.0.1:{info['port']}", NS, timeout=0.5):
        return None
    pid: int = info["pid"]
    return pid


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_server_is_restarted_with_its_acknowledged_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the embedded server started (and supervised) by connect, with data written
    settings = Settings(db_port=free_port(), data_dir=str(tmp_path / "d"), namespace=NS)
    db = connect(settings, start_embedded=True)
    try:
        assert db.embedded is not None
        first = db.embedded.pid
        db.set("acked", {"n": 1, "list": ["a", "b"]})
        ids = [db.push("pushed", {"i": i}) for i in range(50)]
        # When it is killed
        with caplog.at_level(logging.INFO, logger="atmosphere.db.supervisor"):
            assert first is not None
            os.kill(first, signal.SIGKILL)
            # Then it is back within seconds, a new process on the same port
            supervisor = db.embedded.supervisor
            assert isinstance(supervisor, Supervisor)
            pid = wait_until(
                lambda: supervisor.restarts == 1 and server_pid(tmp_path / "d"),
                10,
                what="a new server answers",
            )
        assert pid != first and pid == db.embedded.pid
        # with everything that was acknowledged before the kill
        assert db.get("acked") == {"n": 1, "list": ["a", "b"]}
        assert sorted((db.get("pushed") or {}).keys()) == sorted(ids)
        db.set("after", True)
        assert db.get("after") is True
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"(pid {first}) was killed by SIGKILL" in m for m in messages), messages
        assert any("restarted" in m and "restart 1" in m for m in messages), messages
    finally:
        db.close()
    # and a clean close stops it for good: nothing restarts it
    assert not supervisor.running
    assert port_closed(settings.db_port)


def test_two_supervisors_bring_back_exactly_one_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a dispatcher-like owner and a second one that found the server running
    settings = Settings(db_port=free_port(), data_dir=str(tmp_path / "d"), namespace=NS)
    owner = connect(settings, start_embedded=True)
    other = connect(settings, start_embedded=True)
    try:
        assert owner.embedded is not None and other.embedded is not None
        assert other.embedded.pid is None  # watched, not ours
        first = owner.embedded.pid
        owner.set("x", 1)
        # When the server is killed
        assert first is not None
        caplog.set_level(logging.INFO, logger="atmosphere.db.supervisor")
        os.kill(first, signal.SIGKILL)
        # Then one server comes back, restarted by one of them
        supervisors = [owner.embedded.supervisor, other.embedded.supervisor]
        assert all(isinstance(s, Supervisor) for s in supervisors)

        def restarts() -> int:
            return sum(s.restarts for s in supervisors if isinstance(s, Supervisor))

        pid = wait_until(
            lambda: restarts() == 1 and server_pid(tmp_path / "d"), 10, what="server back"
        )
        assert pid != first and pid in (owner.embedded.pid, other.embedded.pid)
        assert all(isinstance(s, Supervisor) and s.running for s in supervisors)
        assert other.get("x") == 1
        # and the other one waited for its turn instead of starting a second server that
        # could only fail on the data directory's lock
        failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not failed, failed
    finally:
        owner.close()
        other.close()
    # and once both are closed it is stopped (whichever of them started it stopped it)
    wait_until(lambda: port_closed(settings.db_port), 10, what="server stopped")


def test_a_submit_while_the_database_is_down_is_a_clear_error() -> None:
    # Given a maker whose database is not answering (the gap before a restart)
    database = FirebaseDatabase(f"http://127.0.0.1:{free_port()}?ns={NS}")
    app = Atmosphere("gap", database=database)

    @app.task("echo")
    def echo(ticket: object, data: object) -> object:
        return data

    try:
        # Then the submission fails with a DatabaseError saying so, instead of hanging or
        # vanishing (submit() returns at once: the maker's outbox writes, so the handle fails)
        handle = echo.submit(name="n", data={"x": 1}, timeout=5)
        with pytest.raises(SubmitFailed, match="unreachable"):
            handle.get(timeout=60)
    finally:
        app.close()
        database.close()
