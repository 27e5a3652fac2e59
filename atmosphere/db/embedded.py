"""Find, start and stop the embedded database server (``atmosphere db``) as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

    def __init__(self, proc: subprocess.Popen[bytes], url: str, data_dir: Path, log: Path) -> None:
        self.proc = proc
        self.url = url  # http://HOST:PORT
        self.data_dir = data_dir
        self.log = log  # the server's output (a file, so it outlives this process safely)

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


def start(
    host: str,
    port: int,
    data_dir: str | os.PathLike[str],
    *,
    token: str | None = None,
    fsync: bool = False,
    timeout: float = 30.0,
) -> EmbeddedServer:
    """Run ``python -m atmosphere db`` and return once it listens; ConfigError if it cannot.

    Its output goes to ``<data_dir>/server.log`` rather than a pipe: a pipe nobody reads would
    block the server, and one whose reader died would kill it with SIGPIPE.
    """
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    log = path / "server.log"
    cmd = [sys.executable, "-m", "atmosphere", "db", "--host", host, "--port", str(port)]
    cmd += ["--data-dir", str(path)]
    if fsync:
        cmd.append("--fsync")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("ATMOSPHERE_DB_TOKEN", None)  # only an explicit token, never an inherited one
    if token is not None:
        env["ATMOSPHERE_DB_TOKEN"] = token  # not on the command line, where ps shows it
    with open(log, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = _wait_listening(proc, log, offset, timeout)
    return EmbeddedServer(proc, url, path, log)


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, offset: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        output = _read_from(log, offset)
        for line in output.splitlines():
            if line.startswith(LISTENING):
                return line[len(LISTENING) :].strip()
        if proc.poll() is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # polling a real child process's output, with a deadline
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    shown = output.strip() or "(no output)"
    raise ConfigError(f"the embedded database server did not start: {shown} (log: {log})")


def _read_from(log: Path, offset: int) -> str:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", errors="replace")
