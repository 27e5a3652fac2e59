"""The fleet under test: the embedded database, two dispatchers and a few clouds, supervised.

The supervisor restarts whatever exits (as systemd's ``Restart=always`` would), so a ``kill -9``
from the fault injector or a poison job's ``os._exit`` is followed by a fresh process, and the
database comes back on the same port and data directory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from atmosphere.db.base import Database
from atmosphere.paths import Paths

from .procs import CLOUD_READY, DB_READY, DISPATCHER_READY, Child, free_port
from .tasks import EXEC_DIR_ENV

ROOT = "atmosphere"
NAMESPACE = "chaos"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """Failure-detection settings given to every process (ATMOSPHERE_* variables)."""

    heartbeat: float = 0.25
    dead_after: float = 1.5
    lease: float = 1.0
    retention: float | None = None  # finished jobs kept this long (None: the default)

    def env(self) -> dict[str, str]:
        """The environment that sets them."""
        env = {
            "ATMOSPHERE_HEARTBEAT_INTERVAL": str(self.heartbeat),
            "ATMOSPHERE_DEAD_AFTER": str(self.dead_after),
            "ATMOSPHERE_LEASE_SECONDS": str(self.lease),
        }
        if self.retention is not None:
            env["ATMOSPHERE_RETENTION"] = str(self.retention)
        return env

    @property
    def outage(self) -> float:
        """A freeze this long outlasts both the lease and ``dead_after``."""
        return max(self.lease, self.dead_after) + 1.0


def leader_pid(owner: str) -> int | None:
    """The pid in a dispatcher id ``host-pid-xxxx`` (the lease owner), or None."""
    parts = owner.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class Fleet:
    """Every process of one suite run, in ``workdir`` (logs, data, exec logs)."""

    def __init__(
        self,
        workdir: Path,
        timing: Timing,
        *,
        clouds: int = 3,
        concurrency: int = 2,
        dispatchers: int = 2,
        fsync: bool = False,
        restart_delay: float = 0.5,
    ) -> None:
        self.workdir = workdir
        self.timing = timing
        self.exec_dir = workdir / "exec"
        logs = workdir / "logs"
        for d in (self.exec_dir, logs):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}?ns={NAMESPACE}"
        self.paths = Paths(ROOT)
        db_args = ["db", "--port", str(self.port), "--data-dir", str(workdir / "data")]
        self.db = Child(
            "db", db_args + (["--fsync"] if fsync else []), ready=DB_READY, env={}, log_dir=logs
        )
        env = timing.env()
        common = ["--db-url", self.url, "--root", ROOT]
        self.dispatchers = [
            Child(
                f"dispatcher{i}",
                ["dispatcher", *common, "--no-station"],
                ready=DISPATCHER_READY,
                env=env,
                log_dir=logs,
            )
            for i in range(dispatchers)
        ]
        cloud_env = {**env, EXEC_DIR_ENV: str(self.exec_dir)}
        self.clouds = [
            Child(
                f"cloud{i}",
                [
                    "cloud",
                    "chaos.tasks",
                    *common,
                    "--name",
                    f"cloud{i}",
                    "--concurrency",
                    str(concurrency),
                    "--grace",
                    "5",
                    "--wait",
                    "120",
                ],
                ready=CLOUD_READY,
                env=cloud_env,
                log_dir=logs,
            )
            for i in range(clouds)
        ]
        self.restart_delay = restart_delay
        self.restarts: dict[str, int] = {}
        self.exits: list[tuple[str, float, int | None]] = []  # (name, seen at, exit code)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def children(self) -> list[Child]:
        """Every process, database first."""
        return [self.db, *self.dispatchers, *self.clouds]

    def start_db(self) -> None:
        """Start the database and wait for it."""
        self.db.start()

    def start_dispatchers(self) -> None:
        """Start the dispatchers one by one (the first one leads)."""
        for child in self.dispatchers:
            child.start()

    def start_clouds(self) -> None:
        """Start the clouds and wait until each has registered."""
        for child in self.clouds:
            child.spawn()
        for child in self.clouds:
            child.wait_ready(120)

    def start(self) -> None:
        """Everything, then the supervisor."""
        self.start_db()
        self.start_dispatchers()
        self.start_clouds()
        self.supervise()

    def supervise(self) -> None:
        """Restart every process that exits from now on (until ``stop``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
            self._thread.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.1):
            for child in self.children:
                if child.proc is not None and not child.alive() and not self._stopping.is_set():
                    self.exits.append((child.name, time.time(), child.proc.returncode))
                    # An operator's supervisor restarts after a short pause, not in a tight loop.
                    if self._stopping.wait(self.restart_delay):
                        return
                    _log.info(
                        "supervisor: %s exited (%s); restarting", child.name, child.proc.returncode
                    )
                    child.spawn()
                    self.restarts[child.name] = self.restarts.get(child.name, 0) + 1

    def leader(self, db: Database) -> Child | None:
        """The dispatcher that holds the lease now, or None (no lease, or unreachable)."""
        try:
            lease = db.get(self.paths.lease)
        except Exception:  # the database may be down right now (a fault)
            return None
        owner = lease.get("owner") if isinstance(lease, dict) else None
        pid = leader_pid(owner) if isinstance(owner, str) else None
        return next((d for d in self.dispatchers if d.alive() and d.pid == pid), None)

    def thaw_all(self) -> None:
        """Resume every frozen process."""
        for child in self.children:
            if child.frozen:
                child.thaw()

    def wait_all_up(self, timeout: float = 120.0) -> None:
        """Block until every process runs and is ready (the supervisor restarts the dead)."""
        deadline = time.monotonic() + timeout
        while True:
            down = [c.name for c in self.children if not (c.alive() and c.ready in c.output())]
            if not down:
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"not up after {timeout:.0f}s: {', '.join(down)}")
            time.sleep(0.1)  # polling real processes' logs, bounded by the deadline

    def stop(self) -> None:
        """Clean stops: clouds, dispatchers, then the database."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        self.thaw_all()
        for child in [*self.clouds, *self.dispatchers, self.db]:
            child.stop()
