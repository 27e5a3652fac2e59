"""Shared real-process fixtures for integration tests of jobs (dispatcher + cloud processes).

- ``db_url``: this test's database URL (the session server, a fresh namespace).
- ``dispatcher``: an ``atmosphere dispatcher`` process on it (fast heartbeats).
- ``start_cloud(module, name=..., concurrency=..., extra_args=[...])``: an ``atmosphere cloud`` process, returned
  once it has registered; stopped (SIGTERM, then SIGKILL) at teardown.
- ``maker``: an Atmosphere app (tests.integration.jobs_tasks) connected to ``db_url``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from atmosphere.app import Atmosphere
from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from atmosphere.settings import Settings
from tests.integration.dispatcher_support import DispatcherProcess
from tests.support import AtmosphereProcess, ServerProcess

ROOT = "atmosphere"
REPO = Path(__file__).resolve().parents[2]
# Fast failure detection, so crash tests stay quick.
FAST_ENV = {"ATMOSPHERE_HEARTBEAT_INTERVAL": "0.25", "ATMOSPHERE_DEAD_AFTER": "1.5"}
# Failover tests also shorten the dispatcher leader lease.
LEASE = 1.0
FAST_HA_ENV = {**FAST_ENV, "ATMOSPHERE_LEASE_SECONDS": str(LEASE)}
TASKS = "tests.integration.jobs_tasks"


class CloudProcess(AtmosphereProcess):
    """An ``atmosphere cloud`` child process, its log collected."""

    UP = "up: types"

    def __init__(
        self,
        module: str,
        db_url: str,
        *,
        name: str,
        concurrency: int = 1,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cloud_id: str | None = None
        super().__init__(
            [
                "cloud",
                module,
                "--db-url",
                db_url,
                "--root",
                ROOT,
                "--name",
                name,
                "--concurrency",
                str(concurrency),
                "--grace",
                "10",
                *extra_args,
            ],  # fmt: skip
            ready=self.UP,
            env={**FAST_ENV, **(env or {})},
            cwd=REPO,
            what=f"cloud {name}",
        )

    def seen(self, ready_line: str) -> None:
        # "cloud NAME (ID) up: types ..."
        self.cloud_id = ready_line.split("(", 1)[1].split(")", 1)[0]


@pytest.fixture
def db_url(db_server: ServerProcess, ns: str) -> str:
    """This test's database: the session server, a fresh namespace."""
    return db_server.db_url(ns)


@pytest.fixture
def dispatcher(db_url: str) -> Iterator[DispatcherProcess]:
    """A running ``atmosphere dispatcher`` on this test's database."""
    proc = DispatcherProcess(db_url, ROOT, FAST_ENV)
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def start_cloud(db_url: str) -> Iterator[Callable[..., CloudProcess]]:
    """``start_cloud(module=TASKS, name=..., concurrency=1)``: a registered cloud process."""
    started: list[CloudProcess] = []

    def start(
        module: str = TASKS,
        *,
        name: str = "c1",
        concurrency: int = 1,
        extra_args: Sequence[str] = (),
    ) -> CloudProcess:
        proc = CloudProcess(
            module, db_url, name=name, concurrency=concurrency, extra_args=extra_args
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            try:
                proc.stop(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def maker(db_url: str) -> Iterator[Atmosphere]:
    """A maker (the test tasks' app) connected to this test's database."""
    from tests.integration.jobs_tasks import make_app

    database = FirebaseDatabase(db_url)
    app = make_app(Settings.from_url(db_url, **_fast_settings()), database)
    try:
        yield app
    finally:
        app.close()
        database.close()


def _fast_settings() -> dict[str, Any]:
    return {"heartbeat_interval": 0.25, "dead_after": 1.5}


@pytest.fixture
def url(db_url: str) -> str:
    """The fresh namespace's database URL (the dispatcher and schedule tests' name for it)."""
    return db_url


@pytest.fixture
def db(db_url: str) -> Iterator[FirebaseDatabase]:
    """A client on the fresh namespace, closed at teardown."""
    database = FirebaseDatabase(db_url)
    yield database
    database.close()


@pytest.fixture
def paths() -> Paths:
    """Where everything lives under the tests' root."""
    return Paths(ROOT)


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """Everything a test starts (dispatchers, simulated clouds), stopped at teardown."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        if isinstance(thing, DispatcherProcess):
            thing.kill()
        else:
            thing.close()
