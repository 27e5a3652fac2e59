"""Real processes on free loopback ports: the embedded server, a dispatcher, any command,
started and waited for until they print their ready line.

Shared by tests, bench and chaos (none of them imports another's helpers: an import contract in
pyproject.toml). ``ChildProcess`` is the one start-and-wait: output collected by a thread, a
ready line, a start that fails as soon as the child exits, a stop that kills what does not stop.
``start_db_server(data_dir)`` runs ``atmosphere db --port 0`` and returns once it printed
``listening on``; ``DispatcherProcess(url, root)`` once the dispatcher printed ``running on
root``. (chaos/procs.py keeps its own: its children log to files and are restarted by pid.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

LISTENING = "atmosphere db listening on "
DISPATCHER_READY = "running on root"
CLOUD_READY = "up: types"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
        self._settled = threading.Event()  # ready, or the output ended first (it exited)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.lines.append(line)
                if self.marker is not None and self.marker in line and not self.ready.is_set():
                    self.seen(line)
                    self.ready.set()
                    self._settled.set()
        finally:
            self._settled.set()

    def seen(self, ready_line: str) -> None:
        """Called with the ready line, before ``ready`` is set."""

    def wait_ready(self, timeout: float = 30.0, what: str = "") -> None:
        """Wait for the ready line. Raise RuntimeError as soon as the process exits without it
        (no waiting out the timeout), TimeoutError (the process killed) if it does not come."""
        name = what or repr(self.proc.args)
        if not self._settled.wait(timeout):
            self.kill()
            raise TimeoutError(f"{name} did not start in {timeout}s:\n{self.log}")
        if not self.ready.is_set():
            code = self.proc.wait(10)
            raise RuntimeError(f"{name} exited ({code}) before it was ready:\n{self.log}")

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


def db_command(
    data_dir: str | os.PathLike[str], token: str | None, extra: Sequence[str]
) -> list[str]:
    """The command line that runs the server."""
    cmd = [sys.executable, "-m", "atmosphere", "db", "--port", "0", "--data-dir", str(data_dir)]
    if token is not None:
        cmd += ["--token", token]
    return cmd + list(extra)


class ServerProcess(ChildProcess):
    """``python -m atmosphere db --port 0``: its ``url`` (``http://127.0.0.1:PORT``) is read from
    its ``listening on`` line. The caller's ``ATMOSPHERE_DB_TOKEN`` is dropped: the token is
    ``token`` or the server's default."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        token: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.url = ""
        self.base_url = ""
        self.port = 0
        super().__init__(
            db_command(data_dir, token, extra_args), LISTENING, unset=("ATMOSPHERE_DB_TOKEN",)
        )

    def seen(self, ready_line: str) -> None:
        self.url = self.base_url = ready_line[len(LISTENING) :].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def db_url(self, ns: str) -> str:
        """The firebase-admin ``databaseURL`` for namespace ``ns``."""
        return f"{self.url}?ns={ns}"

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; past ``timeout``, SIGKILL and raise ``subprocess.TimeoutExpired``."""
        return super().stop(timeout)


def start_db_server(
    data_dir: str | os.PathLike[str],
    token: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 20.0,
) -> ServerProcess:
    """Start the embedded server as a real process and wait for its ``listening on`` line."""
    server = ServerProcess(data_dir, token, extra_args)
    server.wait_ready(timeout, "db server")
    return server


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
