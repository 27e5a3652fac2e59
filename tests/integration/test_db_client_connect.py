"""connect(): finds, waits for, or starts the embedded server as a real child process."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from atmosphere.db import embedded
from atmosphere.db.connect import connect
from atmosphere.errors import ConfigError
from atmosphere.settings import Secret, Settings
from tests.support import ServerProcess, free_port, start_db_server


def test_start_embedded_starts_and_close_stops_it(tmp_path: Path) -> None:
    settings = Settings(db_port=free_port(), data_dir=str(tmp_path / "d"), namespace="n1")
    db = connect(settings, start_embedded=True)
    try:
        assert db.embedded is not None
        info = json.loads((tmp_path / "d" / "server.json").read_text())
        assert info["port"] == settings.db_port and info["pid"] == db.embedded.pid
        db.set("hello", "world")
        other = connect(settings)  # already running: found, not started again
        try:
            assert other.embedded is None
            assert other.get("hello") == "world"
        finally:
            other.close()
        assert db.embedded.proc is not None
        assert db.embedded.proc.poll() is None  # closing a user did not stop the server
    finally:
        db.close()
    assert db.embedded.proc is not None and db.embedded.proc.poll() is not None


def test_start_embedded_with_a_token(tmp_path: Path) -> None:
    settings = Settings(
        db_port=free_port(), data_dir=str(tmp_path / "d"), db_token=Secret("tok-123")
    )
    with connect(settings, start_embedded=True) as db:
        db.set("x", 1)
        assert db.get("x") == 1
        seen = threading.Event()
        listener = db.listen("x", lambda kind, path, data: seen.set())
        assert listener.wait_connected(10) and seen.is_set()


def test_wait_for_a_server_that_comes_up_later(tmp_path: Path) -> None:
    port = free_port()
    started: list[ServerProcess] = []

    def start_later() -> None:
        started.append(start_db_server(tmp_path / "late", extra_args=["--port", str(port)]))

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        # The server it waits for must prove it owns the data directory the settings name.
        settings = Settings(db_port=port, data_dir=str(tmp_path / "late"))
        with connect(settings, wait=30) as db:
            db.set("late", True)
            assert db.get("late") is True
    finally:
        starter.join()
        for server in started:
            server.stop()


def test_explicit_url(db_server: ServerProcess, ns: str) -> None:
    with connect(Settings.from_url(db_server.db_url(ns))) as db:
        db.set("u", 1)
        assert db.get("u") == 1
        assert db.embedded is None


def test_a_server_that_cannot_start_is_a_config_error_with_its_output(tmp_path: Path) -> None:
    running = start_db_server(tmp_path / "busy")
    try:
        with pytest.raises(ConfigError, match="did not start: .*in use"):
            embedded.start("127.0.0.1", free_port(), tmp_path / "busy", timeout=20)
    finally:
        running.stop()
