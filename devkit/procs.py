"""Real processes on free loopback ports: the embedded server, a dispatcher, any
``python -m atmosphere`` command, started and waited for until they print their ready line.

Shared by tests, bench and chaos (none of them imports another's helpers: ``.importlinter``
contract in pyproject.toml). ``start_db_server(data_dir)`` runs ``atmosphere db --port 0`` and
returns once it printed ``listening on``; ``DispatcherProcess(url, root)`` once the dispatcher
printed ``running on root``.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

LISTENING = "atmosphere db listening on "
DISPATCHER_READY = "running on root"
CLOUD_READY = "up: types"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """A running ``atmosphere db`` process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, data_dir: Path) -> None:
        self.proc = proc
        self.url = url  # e.g. "http://127.0.0.1:40123"
        self.base_url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.data_dir = data_dir
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def db_url(self, ns: str) -> str:
        """The firebase-admin ``databaseURL`` for namespace ``ns``."""
        return f"{self.url}?ns={ns}"

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
            raise

    def kill(self) -> None:
        """SIGKILL (``kill -9``) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class ChildProcess:
    """A command as a child process, its output collected line by line; ``ready`` is set once
    a line containing ``marker`` appears (``seen`` gets that line first). Start several, then
    ``wait_ready`` each: they start side by side."""

    def __init__(
        self,
        cmd: Sequence[str],
        marker: str | None,
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        unset: Sequence[str] = (),
    ) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        for name in unset:
            full_env.pop(name, None)
        self.proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
        )
        self.lines: list[str] = []
        self.marker = marker
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.marker is not None and self.marker in line and not self.ready.is_set():
                self.seen(line)
                self.ready.set()

    def seen(self, ready_line: str) -> None:
        """Called with the ready line, before ``ready`` is set."""

    def wait_ready(self, timeout: float = 30.0, what: str = "") -> None:
        """Wait for the ready line; kill the process and raise TimeoutError if it does not come."""
        if not self.ready.wait(timeout):
            self.kill()
            raise TimeoutError(f"{what or self.proc.args!r} did not start:\n{self.log}")

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a clean stop) and wait for the exit code; past ``timeout``, SIGKILL it (no
        process outlives its test) and raise ``subprocess.TimeoutExpired``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL (``kill -9``)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class AtmosphereProcess(ChildProcess):
    """``python -m atmosphere ARGS`` as a child process, started (the constructor returns) once
    a line containing ``ready`` appears; subclasses read that line in ``seen``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        ready: str,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 30.0,
        what: str = "process",
    ) -> None:
        super().__init__([sys.executable, "-m", "atmosphere", *args], ready, env=env, cwd=cwd)
        self.wait_ready(timeout, what)


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
        if line.startswith(LISTENING):
            return
    lines.put(None)


def db_command(
    data_dir: str | os.PathLike[str], token: str | None, extra: Sequence[str]
) -> list[str]:
    """The command line that runs the server."""
    cmd = [sys.executable, "-m", "atmosphere", "db", "--port", "0", "--data-dir", str(data_dir)]
    if token is not None:
        cmd += ["--token", token]
    return cmd + list(extra)


def start_db_server(
    data_dir: str | os.PathLike[str],
    token: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 20.0,
) -> ServerProcess:
    """Start the embedded server as a real process and wait for its ``listening on`` line."""
    env = dict(os.environ)
    env.pop("ATMOSPHERE_DB_TOKEN", None)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        db_command(data_dir, token, extra_args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise TimeoutError(f"db server did not start in {timeout}s: {''.join(seen)}") from None
        if line is None:
            proc.wait(10)
            raise RuntimeError(f"db server exited ({proc.returncode}): {''.join(seen)}")
        seen.append(line)
        if line.startswith(LISTENING):
            reader.join()
            return ServerProcess(proc, line[len(LISTENING) :].strip(), Path(data_dir))


class DispatcherProcess(AtmosphereProcess):
    """``python -m atmosphere dispatcher`` as a child process, its log collected."""

    def __init__(self, db_url: str, root: str, env: dict[str, str] | None = None) -> None:
        args = ["dispatcher", "--db-url", db_url, "--root", root, "--no-station"]
        super().__init__(
            [*args, "--log-level", "info"],
            ready=DISPATCHER_READY,
            env=env,
            timeout=20,
            what="the dispatcher",
        )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a clean stop) and wait for the exit code."""
        return super().stop(timeout)
