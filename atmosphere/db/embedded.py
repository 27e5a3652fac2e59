"""Find, start and stop the embedded database server (``atmosphere db``) as a child process."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from atmosphere.errors import ConfigError

LISTENING = "atmosphere db listening on "


def is_running(base_url: str, ns: str, timeout: float = 1.0) -> bool:
    """True when something answers HTTP at ``base_url`` (a denied read still counts)."""
    try:
        requests.get(
            f"{base_url}/.json", params={"ns": ns, "shallow": "true"}, timeout=timeout
        ).close()
    except requests.RequestException:
        return False
    return True


def wait_running(base_url: str, ns: str, wait: float) -> bool:
    """Poll until the server answers or ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        if is_running(base_url, ns, timeout=max(0.1, min(1.0, deadline - time.monotonic()))):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


class EmbeddedServer:
    """A server process this program started; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, proc: subprocess.Popen[str], url: str, data_dir: Path) -> None:
        self.proc = proc
        self.url = url  # http://HOST:PORT
        self.data_dir = data_dir
        # The child keeps logging; drain its output so a full pipe never blocks it.
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        self._drainer = threading.Thread(target=self._drain, name="atmosphere-db-out", daemon=True)
        self._drainer.start()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)


def start(
    host: str,
    port: int,
    data_dir: str | os.PathLike[str],
    *,
    token: str | None = None,
    fsync: bool = False,
    timeout: float = 30.0,
) -> EmbeddedServer:
    """Run ``python -m atmosphere db`` and return once it listens; ConfigError if it cannot."""
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "atmosphere", "db", "--host", host, "--port", str(port)]
    cmd += ["--data-dir", str(path)]
    if fsync:
        cmd.append("--fsync")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("ATMOSPHERE_DB_TOKEN", None)  # only an explicit token, never an inherited one
    if token is not None:
        env["ATMOSPHERE_DB_TOKEN"] = token  # not on the command line, where ps shows it
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    url = _wait_listening(proc, timeout)
    return EmbeddedServer(proc, url, path)


def _wait_listening(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            lines.append(line)
            if line.startswith(LISTENING):
                found.append(line[len(LISTENING) :].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if found:
        return found[0]
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    output = "".join(lines).strip() or "(no output)"
    raise ConfigError(f"the embedded database server did not start: {output}")
