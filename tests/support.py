"""Helpers for tests that run real processes: free ports, bounded waits, the embedded server.

``start_db_server(data_dir)`` starts ``python -m atmosphere db --port 0`` as a real process and
returns once it printed its ``listening on`` line; ``sdk_app(url, ns)`` makes a firebase-admin
app in emulator mode (``http://127.0.0.1:PORT?ns=NS``, token ``owner``, no Google credentials).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

LISTENING = "atmosphere db listening on "


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.01, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"condition not met within {timeout:.1f}s: {name}")
        time.sleep(interval)


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


class AtmosphereProcess:
    """``python -m atmosphere ARGS`` as a child process: its output collected line by line,
    started once a line containing ``ready`` appears (subclasses react to lines in ``seen``)."""

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
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atmosphere", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
        )
        self.lines: list[str] = []
        self._ready_text = ready
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            self.kill()
            raise TimeoutError(f"{what} did not start:\n{self.log}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if self._ready_text in line and not self._ready.is_set():
                self.seen(line)
                self._ready.set()

    def seen(self, ready_line: str) -> None:
        """Called with the ready line, before the constructor returns."""

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a clean stop) and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL (``kill -9``)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


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


def unique_ns(prefix: str = "t") -> str:
    """A fresh namespace name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sdk_app(url: str, ns: str, name: str | None = None, **options: Any) -> Any:
    """A firebase_admin App in emulator mode for ``url?ns=ns``; delete it with firebase_admin.delete_app."""
    import firebase_admin

    opts: dict[str, Any] = {"databaseURL": f"{url}?ns={ns}", **options}
    return firebase_admin.initialize_app(options=opts, name=name or f"app-{uuid.uuid4().hex}")


class RawClient:
    """Plain HTTP against the server, for what the SDK cannot express; ``owner`` by default."""

    def __init__(self, base_url: str, ns: str, auth: str | None = "owner") -> None:
        import requests

        self.base_url = base_url
        self.ns = ns
        self.auth = auth
        self.session = requests.Session()

    def url(self, path: str, query: str = "") -> str:
        """``/a/b.json?<query>&ns=<ns>``; ``query`` is sent as written (no re-encoding)."""
        q = f"{query}&ns={self.ns}" if query else f"ns={self.ns}"
        return f"{self.base_url}{path}?{q}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """One request; returns the ``requests.Response``."""
        import orjson

        h = dict(headers or {})
        if self.auth is not None and "Authorization" not in h:
            h["Authorization"] = f"Bearer {self.auth}"
        data = body
        if json_body is not None:
            data = orjson.dumps(json_body)
        return self.session.request(method, self.url(path, query), data=data, headers=h, timeout=30)

    def get(self, path: str, query: str = "", **kw: Any) -> Any:
        """GET."""
        return self.request("GET", path, query=query, **kw)

    def put(self, path: str, value: Any, query: str = "", **kw: Any) -> Any:
        """PUT a JSON value (``None`` is sent as ``null``)."""
        import orjson

        return self.request("PUT", path, body=orjson.dumps(value), query=query, **kw)

    def close(self) -> None:
        """Close the session."""
        self.session.close()


class SseStream:
    """A raw SSE connection read in chunks by a thread; events land in ``events`` (a queue).

    Each event is ``(name, data_text)``; ``raw_chunks`` keeps the bytes as received.
    """

    def __init__(
        self, base_url: str, path: str, ns: str, auth: str | None = "owner", query: str = ""
    ) -> None:
        import requests

        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.raw_chunks: list[bytes] = []
        self.session = requests.Session()
        headers = {"Accept": "text/event-stream"}
        if auth is not None:
            headers["Authorization"] = f"Bearer {auth}"
        q = f"{query}&ns={ns}" if query else f"ns={ns}"
        self.response = self.session.get(
            f"{base_url}{path}?{q}", headers=headers, stream=True, timeout=30
        )
        self.status = self.response.status_code
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                self.raw_chunks.append(chunk)
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    name, data = "", ""
                    for line in block.decode("utf-8").split("\n"):
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            data = line[6:]
                    self.events.put((name, data))
        except Exception:  # noqa: BLE001 - the connection was closed under us: that ends it
            pass
        finally:
            self.ended.set()

    def next(self, timeout: float = 5.0, skip_keep_alive: bool = True) -> tuple[str, Any]:
        """The next event as ``(name, parsed data)``; raise ``queue.Empty`` on timeout."""
        import json

        deadline = time.monotonic() + timeout
        while True:
            name, data = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if skip_keep_alive and name == "keep-alive":
                continue
            return name, json.loads(data) if data else None

    def close(self) -> None:
        """Close the connection (shut the socket first: a read blocked in the thread holds the
        response's lock until a byte arrives)."""
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self.ended.wait(5)
        self.response.close()
        self.session.close()
