"""The browser tests' harness: a real ``atmosphere station`` process on a fresh namespace."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atmosphere.db.client import FirebaseDatabase
from tests.support import ServerProcess, unique_ns

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
READY = "Weather Station on "


class StationProcess:
    """A running ``atmosphere station`` process."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def stop(self) -> None:
        """Ctrl-C equivalent, then wait (kill if it hangs)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_station(
    db_url: str, env: dict[str, str] | None = None, timeout: float = 20.0
) -> StationProcess:
    """Start the station process and wait for its ``Weather Station on <url>`` line."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full_env.pop("ATMOSPHERE_STATION_TOKEN", None)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "atmosphere", "station", "--db-url", db_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            proc.kill()
            raise TimeoutError(f"station did not start: {''.join(seen)}") from None
        if line is None:
            raise RuntimeError(f"station exited ({proc.wait(5)}): {''.join(seen)}")
        seen.append(line)
        if line.startswith(READY):
            return StationProcess(proc, line[len(READY) :].split()[0])


@dataclass
class World:
    """A namespace of its own: its URL, a database client on it, a station watching it."""

    url: str
    db: FirebaseDatabase
    station: StationProcess
    seeded: dict[str, str]


@contextmanager
def new_world(
    db_server: ServerProcess, prepare: Callable[[FirebaseDatabase], dict[str, str]] | None = None
) -> Iterator[World]:
    """A fresh namespace, filled by ``prepare``, then a station process on it (stopped on exit).

    History (stats minutes) is written before the station starts, as it would be in a system
    that has been running: the station reads past minutes at start and only fresh ones later.
    """
    url = db_server.db_url(unique_ns("station"))
    db = FirebaseDatabase(url)
    try:
        seeded = prepare(db) if prepare else {}
        # A dead cloud in the seed has a two-hour-old heartbeat; live ones beat once, at seeding.
        station = start_station(url, {"ATMOSPHERE_DEAD_AFTER": "3600"})
        try:
            yield World(url, db, station, seeded)
        finally:
            station.stop()
    finally:
        db.close()
