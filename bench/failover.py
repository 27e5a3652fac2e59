"""Benchmark of dispatcher failover: ``python -m bench.failover`` (part ``failover`` of ``nox -s bench``).

Real processes on one machine: the embedded database server, ``atmosphere dispatcher`` processes
(one leader, standbys), two ``atmosphere cloud bench.failover_tasks`` processes, and this process
as the maker submitting a steady stream of jobs through the public API. Default settings
(``lease_seconds`` 3).

1. Takeover time: ``kill -9`` the leader, measure until the first assignment stamped with the
   new leader's epoch appears in any inbox (seen on a stream); median of 5 kills.
2. Counts over a run with 3 leader kills under the stream, with a schedule ticking every second
   (catch_up): jobs submitted, completed, executed twice, lost; ticks fired, fired twice, dropped.
   Every run of a job appends its id to the cloud's log file, so a double execution is counted
   wherever it happened.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Row, print_table
from devkit.procs import ChildProcess, start_db_server

ROOT_KEY = "atmosphere"
TAKEOVER_KILLS = 5
COUNTED_KILLS = 3
GAP = 0.02  # seconds between submissions: 50 jobs/s
SETTLE = 2.0  # seconds of steady state between kills


class Child(ChildProcess):
    """A bench process: the caller's ``ATMOSPHERE_DB_TOKEN`` dropped (the bench's embedded
    server runs without one), and a stop that goes on past one that had to be killed."""

    def __init__(self, cmd: list[str], marker: str | None, env: dict[str, str] | None = None):
        super().__init__(cmd, marker, env=env, unset=("ATMOSPHERE_DB_TOKEN",))

    def stop(self, timeout: float = 20.0) -> int:
        try:
            return super().stop(timeout)
        except subprocess.TimeoutExpired:  # killed by then: the measurement is already taken
            return self.proc.wait(10)


class Cluster:
    """Dispatchers and clouds on one namespace, and the views the measurements need."""

    def __init__(self, base_url: str, ns: str, log_dir: str) -> None:
        from atmosphere.db.client import FirebaseDatabase
        from atmosphere.paths import Paths

        self.url = f"{base_url}?ns={ns}"
        self.db = FirebaseDatabase(self.url)
        self.paths = Paths(ROOT_KEY)
        self.log_dir = log_dir
        self.dispatchers: list[Child] = []
        self.clouds: list[Child] = []
        self.first_assignment: dict[int, float] = {}  # epoch -> monotonic time first seen
        self._lock = threading.Lock()
        self._listener = self.db.listen(self.paths.inbox(), self._on_inbox)

    def add_dispatcher(self) -> Child:
        cmd = [sys.executable, "-m", "atmosphere", "dispatcher", "--db-url", self.url]
        cmd += ["--root", ROOT_KEY, "--no-station", "--log-level", "info"]
        child = Child(cmd, "running on root")
        child.wait_ready()
        self.dispatchers.append(child)
        return child

    def add_cloud(self) -> Child:
        cmd = [sys.executable, "-m", "atmosphere", "cloud", "bench.failover_tasks"]
        cmd += ["--db-url", self.url, "--root", ROOT_KEY, "--concurrency", "2"]
        cmd += ["--log-level", "warning"]
        child = Child(cmd, None, {"FAILOVER_LOG_DIR": self.log_dir})
        self.clouds.append(child)
        return child

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout}s: {what}")
            time.sleep(0.02)

    def lease(self) -> Any:
        from atmosphere.scheduler.leadership.lease import Lease

        return Lease.from_json(self.db.get(self.paths.lease))

    def leader(self) -> Child | None:
        lease = self.lease()
        if lease is None or lease.released:
            return None
        pid = (self.db.get(self.paths.dispatchers(lease.owner)) or {}).get("pid")
        return next((d for d in self.dispatchers if d.proc.pid == pid), None)

    def standbys_ready(self) -> bool:
        alive = {d.proc.pid for d in self.dispatchers if d.proc.poll() is None}
        presence = self.db.get(self.paths.dispatchers()) or {}
        roles = {r.get("pid"): r.get("role") for r in presence.values() if isinstance(r, dict)}
        return len(alive) >= 2 and all(roles.get(pid) in ("leader", "standby") for pid in alive)

    def kill_leader(self) -> tuple[float, float]:
        """kill -9 the leader once a standby is ready; (seconds to first new assignment, epoch)."""
        self.wait(self.standbys_ready, 30, "a standby ready")
        self.wait(lambda: self.leader() is not None, 30, "a leader")
        leader, lease = self.leader(), self.lease()
        assert leader is not None and lease is not None
        leader.kill()
        killed = time.monotonic()
        self.dispatchers.remove(leader)

        def taken_over() -> bool:
            with self._lock:
                return any(e > lease.epoch for e in self.first_assignment)

        self.wait(taken_over, 30, "an assignment by the new leader")
        with self._lock:
            first = min(t for e, t in self.first_assignment.items() if e > lease.epoch)
        self.add_dispatcher()  # a fresh standby, so the next kill has one
        return first - killed, lease.epoch

    def _on_inbox(self, kind: str, path: str, data: Any) -> None:
        now = time.monotonic()
        for epoch in _epochs(data):
            with self._lock:
                self.first_assignment.setdefault(epoch, now)

    def executions(self) -> Counter[str]:
        runs: Counter[str] = Counter()
        for log in Path(self.log_dir).glob("*.log"):
            runs.update(line.strip() for line in log.read_text().splitlines() if line.strip())
        return runs

    def close(self) -> None:
        self._listener.close()
        for child in self.clouds + self.dispatchers:
            child.stop()
        self.db.close()


def _epochs(data: Any) -> list[int]:
    """Epochs of the assignments inside an inbox event's data (any depth)."""
    if not isinstance(data, dict):
        return []
    epoch = data.get("epoch")
    if isinstance(epoch, int) and "type" in data:
        return [epoch]
    return [e for child in data.values() for e in _epochs(child)]


class Stream:
    """Submits one ``work`` job every GAP seconds through the public API, keeping the handles."""

    def __init__(self, url: str) -> None:
        from atmosphere.app import Atmosphere
        from atmosphere.db.client import FirebaseDatabase
        from atmosphere.settings import Settings

        self.app = Atmosphere("failover-maker")
        self.app.configure(
            settings=Settings.from_url(url, root=ROOT_KEY), database=FirebaseDatabase(url)
        )
        self.handles: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(GAP):
            n += 1
            self.handles.append(
                self.app.submit({"type": "work", "data": n, "timeout": 120}, _ignore)
            )

    def finish(self, timeout: float = 60.0) -> tuple[int, int]:
        """Stop submitting; wait for every response; (submitted, completed)."""
        self._stop.set()
        self._thread.join(10)
        deadline = time.monotonic() + timeout
        completed = 0
        for handle in self.handles:
            try:
                handle.get(timeout=max(0.0, deadline - time.monotonic()))
                completed += 1
            except Exception:  # a lost or failed job: counted by the caller as not completed
                pass
        return len(self.handles), completed

    def close(self) -> None:
        self.app.close()
        self.app.database.close()


def _ignore(error: Any, data: Any) -> None:
    return None


def takeover_times(base_url: str, kills: int = TAKEOVER_KILLS) -> list[float]:
    """Seconds from kill -9 of the leader to the new leader's first assignment, per kill."""
    with tempfile.TemporaryDirectory() as log_dir:
        cluster = Cluster(base_url, f"failover-a{os.getpid()}", log_dir)
        stream: Stream | None = None
        try:
            cluster.add_dispatcher()
            cluster.add_dispatcher()
            cluster.add_cloud()
            cluster.add_cloud()
            stream = Stream(cluster.url)
            times = []
            for _ in range(kills):
                time.sleep(SETTLE)  # steady state before each kill
                took, _ = cluster.kill_leader()
                times.append(took)
            stream.finish()
            return times
        finally:
            if stream is not None:
                stream.close()
            cluster.close()


def counted_run(base_url: str, kills: int = COUNTED_KILLS) -> dict[str, float]:
    """Counts over a run with ``kills`` leader kills under the stream, with a ticking schedule."""
    from atmosphere.scheduler.ticks import tick_id
    from atmosphere.schedules import make_schedule, store_schedule

    with tempfile.TemporaryDirectory() as log_dir:
        cluster = Cluster(base_url, f"failover-b{os.getpid()}", log_dir)
        stream: Stream | None = None
        try:
            cluster.add_dispatcher()
            cluster.add_dispatcher()
            cluster.add_cloud()
            cluster.add_cloud()
            schedule = make_schedule("bench-tick", "tick", every=1, misfire="catch_up")
            store_schedule(cluster.db, cluster.paths, schedule)
            stream = Stream(cluster.url)
            for _ in range(kills):
                time.sleep(SETTLE)
                cluster.kill_leader()
            time.sleep(SETTLE)
            submitted, completed = stream.finish()
            cluster.db.update(cluster.paths.schedules("bench-tick"), {"paused": True})
            jobs = cluster.db.get(cluster.paths.jobs()) or {}
            fires = sorted(
                r["schedule"]["fire"]
                for r in jobs.values()
                if isinstance(r, dict) and isinstance(r.get("schedule"), dict)
            )
            tick_ids = {tick_id("bench-tick", f / 1000) for f in fires}  # fires: stored ms
            cluster.wait(lambda: tick_ids <= set(cluster.executions()), 30, "every tick ran")
            runs = cluster.executions()
            twice = {job for job, n in runs.items() if n > 1}
            expected = set(range(fires[0], fires[-1] + 1, 1000)) if fires else set()
            return {
                "submitted": submitted,
                "completed": completed,
                "executed twice": len(twice - tick_ids),
                "lost": submitted - completed,
                "ticks fired": len(fires),
                "ticks fired twice": len(twice & tick_ids) + (len(fires) - len(set(fires))),
                "ticks dropped": len(expected - set(fires)),
            }
        finally:
            if stream is not None:
                stream.close()
            cluster.close()


def run() -> list[Row]:
    """Both measurements on one embedded server; the rows to print."""
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_db_server(data_dir)
        try:
            times = takeover_times(server.url)
            counts = counted_run(server.url)
        finally:
            server.stop()
    rows = [
        Row(
            "failover",
            f"kill -9 leader -> first assignment by new leader (median of {len(times)})",
            statistics.median(times),
            "s",
            target="< 5 s",
        ),
        Row("failover", "  takeover, fastest", min(times), "s"),
        Row("failover", "  takeover, slowest", max(times), "s"),
    ]
    targets = {"lost": "0", "ticks fired twice": "0", "executed twice": "0", "ticks dropped": "0"}
    for name, value in counts.items():
        label = f"{name} ({COUNTED_KILLS} leader kills)"
        rows.append(Row("failover", label, value, "count", target=targets.get(name, "")))
    return rows


if __name__ == "__main__":
    print_table(run())
