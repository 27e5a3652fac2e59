"""``atmosphere demo``: start a whole Atmosphere on this machine and keep it busy.

A dispatcher (which starts the embedded database and serves the Weather Station), two clouds
on ``atmosphere.demo.tasks``, a periodic schedule, and a maker in this process submitting a mix
of RPCs, chains, retried jobs, fire-and-forget jobs and recursive jobs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_READY_LINE = "up: types"


@dataclass
class DemoProcesses:
    """The dispatcher and cloud processes the demo runs (each logs to a file in data_dir)."""

    data_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Path:
        log = self.data_dir / f"demo-{name}.log"
        handle = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "atmosphere", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
        handle.close()
        self.procs.append(proc)
        return log

    def wait_for(self, log: Path, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in log.read_text(errors="replace"):
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{log.name} did not say {text!r}:\n{tail}")
            time.sleep(0.05)  # polling a log file of a process we started: no event to wait on

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


class Tally:
    """Thread-safe counts of what the demo's jobs came back with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.last: list[str] = []

    def callback(self, label: str) -> Any:
        def done(error: Exception | None, data: Any) -> None:
            with self._lock:
                self.counts["failed" if error else "succeeded"] += 1
                line = f"{label}: {'error ' + str(error) if error else data}"
                self.last = [line[:110], *self.last[:5]]

        return done

    def add(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1


def run_demo(
    *,
    duration: float,
    clouds: int,
    station_port: int,
    db_port: int,
    data_dir: str,
    rate: float,
) -> int:
    """Run the demo for ``duration`` seconds (0: until Ctrl-C); return an exit code."""
    from rich.console import Console

    console = Console()
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        ATMOSPHERE_DB_PORT=str(db_port),
        ATMOSPHERE_DATA_DIR=str(directory),
        ATMOSPHERE_STATION_PORT=str(station_port),
    )
    env.pop("ATMOSPHERE_DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("ATMOSPHERE_DB_PORT", "ATMOSPHERE_DATA_DIR")})

    processes = DemoProcesses(directory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        console.print(
            "[bold]Atmosphere demo[/]: starting the dispatcher (and the embedded database)"
        )
        log = processes.start(
            "dispatcher", ["dispatcher", "--station-port", str(station_port)], env
        )
        processes.wait_for(log, "dispatcher", timeout=60)
        for n in range(1, clouds + 1):
            cloud_log = processes.start(
                f"cloud-{n}", ["cloud", "atmosphere.demo.tasks", "--name", f"cloud-{n}"], env
            )
            processes.wait_for(cloud_log, _READY_LINE, timeout=60)
        console.print(
            f"[green]Ready.[/] Weather Station: [bold link=http://localhost:{station_port}]"
            f"http://localhost:{station_port}[/]   logs: {directory}/demo-*.log   Ctrl-C stops"
        )
        return _submit_loop(console, stop, duration, rate)
    except KeyboardInterrupt:
        return 0
    finally:
        from . import tasks

        tasks.cloud.close()  # before the database goes away, so the maker leaves quietly
        console.print("stopping the demo processes ...")
        processes.stop()


def _submit_loop(console: Any, stop: threading.Event, duration: float, rate: float) -> int:
    from atmosphere import chain
    from atmosphere.schedules import make_schedule, store_schedule

    from . import tasks

    app = tasks.cloud
    store_schedule(
        app.database,
        app.paths,
        make_schedule("demo-heartbeat", {"type": "syncUser", "name": "scheduled"}, every=10),
    )
    tally = Tally()
    started = time.monotonic()
    last_print = 0.0
    n = 0
    while not stop.is_set():
        if duration and time.monotonic() - started > duration:
            break
        n += 1
        _submit_one(n, tasks, chain, tally)
        if time.monotonic() - last_print > 2:
            last_print = time.monotonic()
            counts = tally.counts
            console.print(
                f"[dim]{time.strftime('%H:%M:%S')}[/] submitted {n} · "
                f"[green]{counts['succeeded']} ok[/] · [red]{counts['failed']} failed[/]"
                + (f" · latest {tally.last[0]}" if tally.last else "")
            )
        stop.wait(random.expovariate(rate))
    return 0 if tally.counts["succeeded"] > 0 or n == 0 else 1


def _submit_one(n: int, tasks: Any, chain: Any, tally: Tally) -> None:
    kind = n % 10
    user = random.choice(["ada", "grace", "linus", "guido", "barbara", "ken"])
    if kind in (0, 1, 2, 3):
        size = {"width": random.randint(200, 4000), "height": random.randint(200, 3000)}
        tasks.resize_image.submit(name=f"img-{n}", data=size).then(tally.callback("resizeImage"))
    elif kind in (4, 5):
        chain(
            tasks.resize_image.s({"width": 1024, "height": 768}, name=user),
            tasks.sync_user.s({"reason": "avatar changed"}),
        ).submit(tally.callback("chain"))
    elif kind in (6, 7):
        tasks.send_email.submit(name=user, data={"to": f"{user}@example.com"}).then(
            tally.callback("sendEmail")
        )
    elif kind == 8:
        tasks.sync_user.submit(name=user, data={}, forget=True)
        tally.add("fire-and-forget")
    else:
        tasks.report.submit(name=f"report-{n}", data={"users": [user, "ada"]}).then(
            tally.callback("report")
        )
