"""``atmosphere dispatcher`` with nothing configured: starts the embedded database and the station."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from tests.integration.dispatcher_support import SimCloud, states, submit, wait_until
from tests.support import free_port


def test_dispatcher_starts_the_embedded_database_and_station_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    db_port, station_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ATMOSPHERE_DB_PORT": str(db_port),
        "ATMOSPHERE_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("ATMOSPHERE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "atmosphere", "dispatcher", "--station-port", str(station_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    station_up = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Weather Station at" in line:
                station_up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{db_port}?ns=atmosphere"
    try:
        assert station_up.wait(30), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{station_port}/", timeout=10) as response:
            assert response.status == 200
        db = FirebaseDatabase(url)
        cloud = SimCloud(url, "atmosphere", "solo", ["hello"])
        try:
            paths = Paths("atmosphere")
            job = submit(db, paths, "hello", "world")
            wait_until(lambda: states(db, paths).get(job) == "succeeded", 15, "ran")
        finally:
            cloud.close()
            db.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(5)
    assert "Traceback" not in "".join(lines)
    # The embedded server was the dispatcher's child: it is gone with it.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", db_port)) != 0
