"""The fleet under test: the embedded database, two dispatchers and a few clouds, supervised.

The supervisor restarts whatever exits (as systemd's ``Restart=always`` would), so a ``kill -9``
from the fault injector or a poison job's ``os._exit`` is followed by a fresh process, and the
database comes back on the same port and data directory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from atmosphere.db.base import Database
from atmosphere.paths import Paths

from .procs import CLOUD_READY, DB_READY, DISPATCHER_READY, Adopted, Child, free_port
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


def embedded_env(port: int, data_dir: Path, fsync: bool) -> dict[str, str]:
    """The variables that point ``atmosphere dispatcher`` at its own embedded database."""
    return {
        "ATMOSPHERE_DB_PORT": str(port),
        "ATMOSPHERE_DATA_DIR": str(data_dir),
        "ATMOSPHERE_NAMESPACE": NAMESPACE,
        "ATMOSPHERE_FSYNC": "1" if fsync else "0",
        "ATMOSPHERE_DATABASE_URL": "",
    }


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
        concurrency: int | Sequence[int] = 2,
        dispatchers: int = 2,
        fsync: bool = False,
        db_owner: str = "dispatcher",
        restart_delay: float = 0.5,
    ) -> None:
        self.workdir = workdir
        self.timing = timing
        self.exec_dir = workdir / "exec"
        if any(workdir.glob("*/*")):
            # Old exec logs and data would be counted as this run's: refuse, do not guess.
            raise RuntimeError(f"{workdir} holds an earlier run; give a fresh --workdir")
        logs = workdir / "logs"
        for d in (self.exec_dir, logs):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}?ns={NAMESPACE}"
        self.paths = Paths(ROOT)
        data = workdir / "data"
        env = timing.env()
        common = ["--db-url", self.url, "--root", ROOT]
        self.db: Child | Adopted
        if db_owner == "harness":
            db_args = ["db", "--port", str(self.port), "--data-dir", str(data)]
            db_args += ["--fsync"] if fsync else []
            self.db = Child("db", db_args, ready=DB_READY, env={}, log_dir=logs)
            dispatcher_args = ["dispatcher", *common, "--no-station"]
            dispatcher_env = env
        else:
            # The embedded default: the first dispatcher starts the server and supervises it,
            # the other watches it (finding 5); the harness only kills and freezes it.
            self.db = Adopted("db", data, self.port)
            dispatcher_args = ["dispatcher", "--root", ROOT, "--no-station"]
            dispatcher_env = {**env, **embedded_env(self.port, data, fsync)}
        self.dispatchers = [
            Child(
                f"dispatcher{i}",
                dispatcher_args,
                ready=DISPATCHER_READY,
                env=dispatcher_env,
                log_dir=logs,
            )
            for i in range(dispatchers)
        ]
        cloud_env = {**env, EXEC_DIR_ENV: str(self.exec_dir)}
        # One number for every cloud, or one per cloud (then ``clouds`` is their count).
        slots = [concurrency] * clouds if isinstance(concurrency, int) else list(concurrency)
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
                    str(n),
                    "--grace",
                    "5",
                    "--wait",
                    "120",
                ],
                ready=CLOUD_READY,
                env=cloud_env,
                log_dir=logs,
            )
            for i, n in enumerate(slots)
        ]
        self.restart_delay = restart_delay
        self.restarts: dict[str, int] = {}
        self.exits: list[tuple[str, float, int | None]] = []  # (name, seen at, exit code)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def children(self) -> list[Child]:
        """Every process the harness started (and restarts), database first."""
        own = [self.db] if isinstance(self.db, Child) else []
        return [*own, *self.dispatchers, *self.clouds]

    def start_db(self) -> None:
        """Start the database and wait for it (unless the first dispatcher starts it)."""
        if isinstance(self.db, Child):
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
        for proc in [self.db, *self.children]:
            if proc.frozen:
                proc.thaw()

    def wait_all_up(self, timeout: float = 120.0) -> None:
        """Block until every process runs and is ready (the supervisor restarts the dead)."""
        deadline = time.monotonic() + timeout
        while True:
            down = [c.name for c in [self.db, *self.children] if not c.up()]
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
