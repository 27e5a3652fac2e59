"""Find, start and stop the embedded database server (``atmosphere db``) as a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from atmosphere.errors import ConfigError
from atmosphere.localdb import identity

from ._http import probe

IDENTITY = identity.IDENTITY_PATH.decode()

LISTENING = "atmosphere db listening on "
# Written by the server once it listens: {"pid", "host", "port", "url", "socket"}.
INFO_FILE = "server.json"


def is_running(
    base_url: str, ns: str, timeout: float = 1.0, *, data_dir: str | os.PathLike[str] | None = None
) -> bool:
    """True when something answers HTTP at ``base_url`` (a denied read still counts).

    With ``data_dir``, only the server that owns it counts: it must prove it holds the key
    there (localdb/identity.py), so another local user's process on the port is not trusted.
    """
    if data_dir is not None:
        return is_ours(base_url, data_dir, timeout)
    return probe(f"{base_url}/.json?ns={quote(ns, safe='')}&shallow=true", timeout) is not None


def is_ours(base_url: str, data_dir: str | os.PathLike[str], timeout: float = 1.0) -> bool:
    """Whether the server at ``base_url`` proves it holds ``data_dir``'s identity key."""
    key = identity.read_key(data_dir)
    if key is None:
        return False
    nonce = identity.new_nonce()
    answer = probe(f"{base_url}{IDENTITY}?nonce={quote(nonce, safe='')}", timeout)
    if answer is None or answer[0] != 200:
        return False
    try:
        proof = json.loads(answer[1]).get("proof")
    except (ValueError, AttributeError):
        return False
    return identity.proves(key, nonce, proof)


def wait_running(
    base_url: str, ns: str, wait: float, *, data_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Poll until the server answers (and, with ``data_dir``, proves it is ours) or ``wait``
    seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        left = max(0.1, min(1.0, deadline - time.monotonic()))
        if is_running(base_url, ns, timeout=left, data_dir=data_dir):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def read_info(data_dir: Path) -> Any:
    """The data directory's ``server.json`` (None if missing or unreadable).

    A server that stops cleanly removes it; one that was killed leaves it behind.
    """
    try:
        return json.loads((data_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ServerOptions:
    """How the server is run; a restart runs it with exactly the same."""

    host: str
    port: int
    data_dir: Path
    token: str | None = None
    fsync: bool = False

    def command(self) -> list[str]:
        """The command line (the token travels in the environment, where ps does not show it)."""
        cmd = [sys.executable, "-m", "atmosphere.localdb", "--host", self.host]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        return [*cmd, "--fsync"] if self.fsync else cmd


class Supervising(Protocol):
    """What ``EmbeddedServer.stop()`` needs from its supervisor (supervisor.py)."""

    def halt(self) -> None:
        """From now on, restart and replace nothing."""

    def join(self, timeout: float) -> None:
        """Wait for the supervisor's thread to end."""


class EmbeddedServer:
    """The embedded server as this program sees it.

    ``proc`` is the server process when this program started it (``stop()`` ends it: SIGTERM,
    then SIGKILL), or None when it only watches a server another process started (``stop()``
    leaves that one running). A supervisor may replace ``proc`` after a restart.
    """

    def __init__(
        self, proc: subprocess.Popen[bytes] | None, url: str, options: ServerOptions
    ) -> None:
        self.proc = proc
        self.url = url  # http://HOST:PORT
        self.options = options
        self.lock = threading.Lock()  # guards proc against a restart racing stop()
        self.supervisor: Supervising | None = None

    @property
    def data_dir(self) -> Path:
        return self.options.data_dir

    @property
    def log(self) -> Path:
        """The server's output (a file, so it outlives this process safely)."""
        return self.options.data_dir / "server.log"

    @property
    def pid(self) -> int | None:
        """The process id of the server this program started (None if it only watches one)."""
        proc = self.proc
        return None if proc is None else proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the supervisor first (no restart on an intentional stop), then our server."""
        supervisor = self.supervisor
        if supervisor is not None:
            supervisor.halt()
        with self.lock:
            proc = self.proc
        if proc is not None:
            terminate(proc, timeout)
        if supervisor is not None:
            supervisor.join(timeout)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


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
    options = ServerOptions(host, port, Path(data_dir), token, fsync)
    proc, url = spawn(options, timeout)
    # With port 0 the server picked one: a restart must come back on the same.
    return EmbeddedServer(proc, url, replace(options, port=int(url.rsplit(":", 1)[1])))


def spawn(
    options: ServerOptions,
    timeout: float,
    started: Callable[[subprocess.Popen[bytes]], None] = lambda proc: None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server process; return it and its URL once it listens (ConfigError if not).

    ``started(proc)`` is called as soon as the process exists, before it listens. Its output
    goes to ``<data_dir>/server.log`` rather than a pipe: a pipe nobody reads would block the
    server, and one whose reader died would kill it with SIGPIPE.
    """
    options.data_dir.mkdir(parents=True, exist_ok=True)
    log = options.data_dir / "server.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("ATMOSPHERE_DB_TOKEN", None)  # only an explicit token, never an inherited one
    if options.token is not None:
        env["ATMOSPHERE_DB_TOKEN"] = options.token  # not on the command line, where ps shows it
    with open(log, "ab") as out:
        offset = out.tell()
        # Its own session: a Ctrl-C in our terminal is ours to handle (we stop it cleanly);
        # reaching the server too it would look like a crash and be restarted.
        proc = subprocess.Popen(
            options.command(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    started(proc)
    return proc, _wait_listening(proc, log, offset, timeout)


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, offset: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        output = _read_from(log, offset)
        for line in output.splitlines():
            # The log is shared: a line may be another starter's server (two supervisors
            # racing to restart it). Ours wrote its pid to server.json before announcing.
            if line.startswith(LISTENING) and _announced_by(proc, log.parent):
                return line[len(LISTENING) :].strip()
        if proc.poll() is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # polling a real child process's output, with a deadline
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    shown = "\n".join(output.strip().splitlines()[-20:]) or "(no output)"
    raise ConfigError(f"the embedded database server did not start: {shown} (log: {log})")


def _announced_by(proc: subprocess.Popen[bytes], data_dir: Path) -> bool:
    info = read_info(data_dir)
    return isinstance(info, dict) and info.get("pid") == proc.pid


def log_tail(log: Path, lines: int = 10, size: int = 8192) -> str:
    """The last lines of the server's log, for an error message."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            text = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {log}: {exc})"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _read_from(log: Path, offset: int) -> str:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", errors="replace")
