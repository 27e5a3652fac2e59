"""Real child processes: ``python -m atmosphere ...`` started, killed, frozen and restarted.

Output goes to a log file, not a pipe: nobody has to read it for the child to keep running,
and a frozen or killed harness thread cannot block it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from devkit.procs import CLOUD_READY, DISPATCHER_READY, LISTENING, free_port

REPO = Path(__file__).resolve().parents[1]
DB_READY = LISTENING
__all__ = ["CLOUD_READY", "DB_READY", "DISPATCHER_READY", "Adopted", "Child", "free_port"]


class Signalled:
    """What the fault injector does to a process: signals, by its current pid."""

    name: str
    frozen: bool = False

    @property
    def pid(self) -> int:
        """The current process id (0: none)."""
        raise NotImplementedError

    def alive(self) -> bool:
        """True while the current process runs (a frozen one counts as alive)."""
        raise NotImplementedError

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to the current process; False if it is not running."""
        pid = self.pid
        if not self.alive():
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """``kill -9``."""
        self.signal(signal.SIGKILL)
        self.frozen = False

    def freeze(self) -> bool:
        """SIGSTOP: the process stops in its tracks (sockets stay open)."""
        self.frozen = self.signal(signal.SIGSTOP)
        return self.frozen

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        self.signal(signal.SIGCONT)
        self.frozen = False

    def rss(self) -> int:
        """Resident memory in bytes (0 if it is not running)."""
        try:
            return int(psutil.Process(self.pid).memory_info().rss) if self.alive() else 0
        except psutil.Error:
            return 0


class Child(Signalled):
    """One ``python -m atmosphere ARGS`` process that can be (re)started many times."""

    def __init__(
        self, name: str, args: list[str], *, ready: str, env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.args = args
        self.ready = ready
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.frozen = False
        self._offset = 0  # where this start's output begins in the log

    @property
    def pid(self) -> int:
        """The current process id (0 before the first start)."""
        return self.proc.pid if self.proc is not None else 0

    def alive(self) -> bool:
        """True while the current process runs (a frozen one counts as alive)."""
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        with open(self.log_path, "ab") as out:
            self._offset = out.tell()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atmosphere", *self.args],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C at the harness's terminal is the harness's
            )
        self.starts += 1
        self.frozen = False

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Block until this start printed its ready line (returned); raise if it did not."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.output().splitlines():
                if self.ready in line:
                    return line
            if not self.alive() or time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.05)  # polling a child's log file, bounded by the deadline

    def start(self, timeout: float = 60.0) -> str:
        """Spawn and wait until ready; the ready line."""
        self.spawn()
        return self.wait_ready(timeout)

    def output(self) -> str:
        """What the current start printed so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self._offset)
            return f.read().decode("utf-8", errors="replace")

    def kill(self) -> None:
        """``kill -9`` and reap."""
        super().kill()
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """A clean stop (SIGTERM), then ``kill -9`` if it does not end in time."""
        if self.frozen:
            self.thaw()
        if not self.signal(signal.SIGTERM):
            return
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def up(self) -> bool:
        """Running, and this start printed its ready line."""
        return self.alive() and self.ready in self.output()


class Adopted(Signalled):
    """The embedded database as a dispatcher started it: not our child, so it is found by the
    pid in its ``server.json``, and whoever started it (finding 5) must bring it back."""

    def __init__(self, name: str, data_dir: Path, port: int) -> None:
        self.name = name
        self.data_dir = data_dir
        self.port = port
        self.frozen = False

    @property
    def pid(self) -> int:
        """The pid the server wrote for this port (0 if none)."""
        try:
            info = json.loads((self.data_dir / "server.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        pid = info.get("pid") if isinstance(info, dict) and info.get("port") == self.port else 0
        return pid if isinstance(pid, int) else 0

    def alive(self) -> bool:
        """True while that pid runs (a zombie waiting for its parent does not count)."""
        pid = self.pid
        try:
            return pid > 0 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def up(self) -> bool:
        """Running and answering HTTP."""
        if not self.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (when the dispatchers did not stop it), then ``kill -9`` after ``timeout``."""
        if self.frozen:
            self.thaw()
        if not self.signal(signal.SIGTERM):
            return
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)  # not our child: poll its pid, bounded
        self.kill()
