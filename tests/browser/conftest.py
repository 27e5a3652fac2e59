"""Browser-test fixtures: headless Chromium, a real station process, the screenshots folder.

The station runs as ``python -m atmosphere station --db-url ... --port 0`` (a real process on
a real socket) against the session's embedded database server; Chromium is Debian's, driven
by Playwright (browsers cannot be downloaded here). Without /usr/bin/chromium the tests skip,
unless CI is set, where they fail.
"""

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
from typing import Any

import pytest

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
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("ATMOSPHERE_STATION_TOKEN", None)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (CI is set, so browser tests must run)")
        pytest.skip("/usr/bin/chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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


@contextmanager
def open_page(browser: Any, *, bypass_csp: bool) -> Iterator[Any]:
    """A fresh page that fails the test on any script error or console error it logged."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=bypass_csp)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    try:
        yield tab
    finally:
        context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page with the Content-Security-Policy lifted: escaping must hold without it, and
    Playwright's wait_for_function needs eval."""
    with open_page(browser, bypass_csp=True) as tab:
        yield tab


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    """A page under the station's real CSP: any violation is a console error, failing the test."""
    with open_page(browser, bypass_csp=False) as tab:
        yield tab


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, name)`` saves a full-page screenshot into test-output/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(tab: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
