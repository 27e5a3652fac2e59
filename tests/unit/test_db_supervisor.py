"""The embedded server's supervisor: its pure decisions, and its loop driven by fake processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atmosphere.db import supervisor as sup
from atmosphere.db.embedded import EmbeddedServer, ServerOptions
from atmosphere.db.stream import Backoff
from atmosphere.db.supervisor import (
    RESTART_BACKOFF,
    Supervisor,
    after_exit,
    crash_streak,
    describe_exit,
    watched_pid,
)
from atmosphere.errors import ConfigError
from tests.support import wait_until

FAST = Backoff(0.001, 0.01)


@pytest.mark.parametrize(
    ("halted", "answering", "ours", "died", "action"),
    [
        (True, False, True, True, "stop"),  # our owner stops the server: never restart
        (True, True, False, True, "stop"),
        (False, True, True, True, "watch"),  # someone restarted it first: watch theirs
        (False, True, False, False, "watch"),
        (False, False, True, True, "restart"),  # ours died
        (False, False, True, False, "restart"),  # ours exited cleanly without being asked
        (False, False, False, True, "restart"),  # theirs died (server.json left behind)
        (False, False, False, False, "stop"),  # theirs was stopped on purpose
    ],
)
def test_after_exit(halted: bool, answering: bool, ours: bool, died: bool, action: str) -> None:
    assert after_exit(halted=halted, answering=answering, ours=ours, died=died) == action


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
        (-200, "was killed by signal 200"),
        (2, "exited with code 2"),
        (0, "exited with code 0"),
        (None, "is gone"),
    ],
)
def test_describe_exit(code: int | None, text: str) -> None:
    assert describe_exit(code) == text


@pytest.mark.parametrize(
    ("info", "pid"),
    [
        ({"pid": 123, "port": 9400, "host": "127.0.0.1"}, 123),
        ({"pid": 123, "port": 9401}, None),  # another port: not the server we use
        ({"pid": "123", "port": 9400}, None),
        ({"pid": True, "port": 9400}, None),
        ({"pid": 0, "port": 9400}, None),
        ({"port": 9400}, None),
        (None, None),  # no server.json: stopped cleanly (or never started)
        ([1, 2], None),
    ],
)
def test_watched_pid(info: Any, pid: int | None) -> None:
    assert watched_pid(info, 9400) == pid


@pytest.mark.parametrize(
    ("streak", "uptime", "after"),
    [(0, 0.5, 1), (1, 0.5, 2), (4, 9.9, 5), (4, 10.0, 0), (0, 3600.0, 0)],
)
def test_crash_streak(streak: int, uptime: float, after: int) -> None:
    assert crash_streak(streak, uptime, stable_after=10.0) == after


def test_restart_backoff_doubles_from_a_tenth_of_a_second_to_five() -> None:
    top = [RESTART_BACKOFF.delay(n, rand=lambda: 1.0) for n in range(10)]
    assert top == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]
    assert all(2.5 <= RESTART_BACKOFF.delay(n) <= 5.0 for n in range(6, 200))


class FakeProc:
    """Enough of a Popen for the supervisor: ``exit(code)`` ends it."""

    count = 0

    def __init__(self) -> None:
        FakeProc.count += 1
        self.pid = 100_000 + FakeProc.count
        self.returncode: int | None = None
        self._ended = threading.Event()

    def exit(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        assert self._ended.wait(30 if timeout is None else timeout), "fake process never ended"
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.exit(-signum)

    def kill(self) -> None:
        self.exit(-signal.SIGKILL)


class FakeSpawn:
    """Stands in for embedded.spawn: fails ``failures`` times, then starts a FakeProc."""

    def __init__(self, failures: int, cause: str = "cannot bind 127.0.0.1:9400: in use") -> None:
        self.failures = failures
        self.cause = cause
        self.calls = 0
        self.started: list[FakeProc] = []

    def __call__(self, options: ServerOptions, timeout: float, started: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConfigError(f"the embedded database server did not start: {self.cause}")
        proc = FakeProc()
        started(proc)
        self.started.append(proc)
        return proc, "http://127.0.0.1:9400"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedServer]:
    """An EmbeddedServer whose process is a FakeProc; nothing answers HTTP."""
    monkeypatch.setattr(sup, "is_running", lambda url, ns, data_dir: False)
    options = ServerOptions("127.0.0.1", 9400, tmp_path)
    handle = EmbeddedServer(FakeProc(), "http://127.0.0.1:9400", options)  # type: ignore[arg-type]
    yield handle
    handle.stop(timeout=5)


def test_a_dead_server_is_restarted_and_failures_are_errors_with_the_cause(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a supervised server whose first two restarts fail
    spawn = FakeSpawn(failures=2)
    monkeypatch.setattr(sup, "spawn", spawn)
    supervisor = Supervisor(server, "atmosphere", backoff=FAST).start()
    first = server.proc
    assert isinstance(first, FakeProc)
    # When it is killed
    with caplog.at_level(logging.INFO, logger="atmosphere.db.supervisor"):
        first.kill()
        wait_until(lambda: supervisor.restarts == 1, 10, what="restarted")
    # Then each failure was an ERROR with the server's own words, and the restart a WARNING
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("in use" in e and "attempt" in e for e in errors)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "was killed by SIGKILL" in warnings[0]
    assert "restarted" in warnings[-1] and "restart 1" in warnings[-1]
    # and the new process is the one a stop will end
    assert server.proc is spawn.started[0] and server.pid == spawn.started[0].pid
    server.stop(timeout=5)
    assert spawn.started[0].returncode == -signal.SIGTERM
    assert not supervisor.running


def test_a_server_that_keeps_dying_after_restarts_is_an_error_with_backoff(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a server that dies right after every restart, with its reason in the log
    spawn = FakeSpawn(failures=0)
    monkeypatch.setattr(sup, "spawn", spawn)
    server.log.write_text("starting\nOSError: [Errno 28] No space left on device\n")
    backoff = Backoff(0.05, 0.2)
    supervisor = Supervisor(server, "atmosphere", backoff=backoff, stable_after=60).start()
    assert isinstance(server.proc, FakeProc)
    with caplog.at_level(logging.WARNING, logger="atmosphere.db.supervisor"):
        server.proc.kill()  # the first death: a plain restart
        for n in range(1, 4):
            wait_until(lambda n=n: supervisor.restarts == n, 10, what=f"restart {n}")
            spawn.started[-1].exit(1)  # dies again at once
        wait_until(lambda: supervisor.restarts == 4, 10, what="restart 4")
    # Then each quick death after a restart is an ERROR with the server's last lines
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3, errors
    assert all("in a row" in e and "No space left on device" in e for e in errors)
    assert "exited with code 1 again, 3 time(s)" in errors[-1]
    # and the restarts were spaced by the backoff, not a tight loop
    ends = [r.created for r in caplog.records if "restarted" in r.getMessage()]
    assert ends[-1] - ends[0] >= backoff.delay(0, rand=lambda: 0) + backoff.delay(1, rand=lambda: 0)


def test_an_intentional_stop_restarts_nothing(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawn = FakeSpawn(failures=0)
    monkeypatch.setattr(sup, "spawn", spawn)
    supervisor = Supervisor(server, "atmosphere", backoff=FAST).start()
    first = server.proc
    server.stop(timeout=5)
    assert isinstance(first, FakeProc) and first.returncode == -signal.SIGTERM
    assert not supervisor.running and spawn.calls == 0


def test_a_restart_that_keeps_failing_keeps_reporting_until_stopped(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spawn = FakeSpawn(failures=10**9, cause="data directory is in use")
    monkeypatch.setattr(sup, "spawn", spawn)
    supervisor = Supervisor(server, "atmosphere", backoff=FAST).start()
    assert isinstance(server.proc, FakeProc)
    with caplog.at_level(logging.ERROR, logger="atmosphere.db.supervisor"):
        server.proc.exit(1)
        wait_until(lambda: len(caplog.records) >= 5, 10, what="five errors")
        server.stop(timeout=5)
    assert not supervisor.running
    calls = spawn.calls
    assert all("data directory is in use" in r.getMessage() for r in caplog.records)
    assert spawn.calls == calls  # nothing after the stop


def test_losing_the_restart_race_watches_the_winner(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given another supervisor restarts the server first (ours cannot take port or lock)
    spawn = FakeSpawn(failures=10**9, cause="data directory is in use")
    monkeypatch.setattr(sup, "spawn", spawn)
    answering = {"now": False}
    monkeypatch.setattr(sup, "is_running", lambda url, ns, data_dir: answering["now"])
    supervisor = Supervisor(server, "atmosphere", backoff=FAST).start()
    assert isinstance(server.proc, FakeProc)
    (tmp_path / "server.json").write_text(json.dumps({"pid": 1, "port": 9400}))  # alive
    # When ours dies and the winner answers
    server.proc.kill()
    wait_until(lambda: spawn.calls >= 1, 10, what="a restart attempt")
    answering["now"] = True
    # Then ours watches the winner's pid and no longer owns a process
    wait_until(lambda: server.proc is None, 10, what="adopted")
    calls = spawn.calls
    assert supervisor.running and server.pid is None
    server.stop(timeout=5)  # a watcher's stop leaves the server running: nothing to end
    assert not supervisor.running and spawn.calls == calls


class Watched:
    """Another process's server (pid 4242 in server.json) watched by a Supervisor."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.spawn = FakeSpawn(failures=0)
        self.alive = True
        self.info = tmp_path / "server.json"
        monkeypatch.setattr(sup, "spawn", self.spawn)
        monkeypatch.setattr(sup, "is_running", lambda url, ns, data_dir: False)
        monkeypatch.setattr(sup, "pid_alive", lambda pid: self.alive)
        self.info.write_text(json.dumps({"pid": 4242, "port": 9400}))
        options = ServerOptions("127.0.0.1", 9400, tmp_path)
        self.server = EmbeddedServer(None, "http://127.0.0.1:9400", options)
        self.supervisor = Supervisor(self.server, "atmosphere", watch_interval=0.01, backoff=FAST)
        self.supervisor.start()


def test_a_watched_server_stopped_on_purpose_is_not_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    watched = Watched(tmp_path, monkeypatch)
    assert watched.supervisor.running and watched.server.pid is None
    # When its owner stops it cleanly (the server removes its server.json)
    with caplog.at_level(logging.INFO, logger="atmosphere.db.supervisor"):
        watched.info.unlink()
        watched.alive = False
        wait_until(lambda: not watched.supervisor.running, 10, what="supervisor ended")
    assert watched.spawn.calls == 0
    assert any("not restarting" in r.getMessage() for r in caplog.records)


def test_a_watched_server_that_died_is_restarted_by_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = Watched(tmp_path, monkeypatch)
    watched.alive = False  # killed: its server.json stays behind
    wait_until(lambda: watched.supervisor.restarts == 1, 10, what="restarted by the watcher")
    started = watched.spawn.started[0]
    assert watched.server.pid == started.pid  # now ours: our clean stop ends it
    watched.server.stop(timeout=5)
    assert started.returncode == -signal.SIGTERM and not watched.supervisor.running


def test_a_server_from_another_data_dir_is_not_supervised(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text(json.dumps({"pid": 4242, "port": 9999}))
    server = EmbeddedServer(
        None, "http://127.0.0.1:9400", ServerOptions("127.0.0.1", 9400, tmp_path)
    )
    supervisor = Supervisor(server, "atmosphere").start()
    assert not supervisor.running and server.supervisor is None


def test_two_supervisors_that_see_one_death_start_one_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two supervisors of one data directory, and a server that takes a while to start
    release = threading.Event()
    spawn = FakeSpawn(failures=0)
    up: list[FakeProc] = []
    begun: list[int] = []

    def slow_spawn(options: ServerOptions, timeout: float, started: Any) -> Any:
        begun.append(1)
        assert release.wait(10), "never released"
        proc, url = spawn(options, timeout, started)
        (tmp_path / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": 9400}))
        up.append(proc)
        return proc, url

    monkeypatch.setattr(sup, "spawn", slow_spawn)
    monkeypatch.setattr(sup, "is_running", lambda url, ns, data_dir: bool(up))
    options = ServerOptions("127.0.0.1", 9400, tmp_path)
    servers = [EmbeddedServer(FakeProc(), "http://127.0.0.1:9400", options) for _ in range(2)]  # type: ignore[arg-type]
    supervisors = [Supervisor(s, "atmosphere", backoff=FAST).start() for s in servers]
    try:
        # When both see it die at once
        with caplog.at_level(logging.INFO, logger="atmosphere.db.supervisor"):
            for s in servers:
                assert isinstance(s.proc, FakeProc)
                s.proc.kill()
            wait_until(lambda: len(begun) == 1, 10, what="one start begun")
            # the other waits for its turn (it polls the lock every 50 ms: six looks)
            assert not became_true(lambda: len(begun) > 1, 0.3)
            release.set()
            wait_until(lambda: sum(s.restarts for s in supervisors) == 1, 10, what="restarted")
            wait_until(lambda: sum(s.pid is None for s in servers) == 1, 10, what="one adopts")
        # Then one server was started, and nobody failed to start one
        assert len(begun) == 1 and spawn.calls == 1
        assert all(sv.running for sv in supervisors)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        release.set()
        for s in servers:
            s.stop(timeout=5)


def became_true(check: Callable[[], bool], seconds: float) -> bool:
    """Whether ``check()`` became true within ``seconds``: a look for something that must not
    happen, over a bounded time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        threading.Event().wait(0.01)
    return check()


def test_a_stuck_restart_lock_is_an_error_and_does_not_stop_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    halted = threading.Event()
    with sup.restart_turn(tmp_path, halted, timeout=5) as held:
        assert held
        with caplog.at_level(logging.ERROR, logger="atmosphere.db.supervisor"):
            with sup.restart_turn(tmp_path, halted, timeout=0.2) as second:  # the same lock
                assert second is False
        assert any("starting the server anyway" in r.getMessage() for r in caplog.records)
    with sup.restart_turn(tmp_path, halted, timeout=0.2) as again:  # released: free again
        assert again


def test_a_dead_child_not_yet_reaped_is_not_alive() -> None:
    # A zombie: kill(pid, 0) still succeeds on it until its parent (us) reaps it.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert sup.pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        wait_until(lambda: not sup.pid_alive(child.pid), 10, what="seen dead before reaped")
        os.kill(child.pid, 0)  # still there: a zombie, not reaped
    finally:
        child.kill()
        child.wait()
    assert not sup.pid_alive(child.pid)
