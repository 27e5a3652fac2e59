"""Keep the embedded database server up: restart it when its process dies.

The process that started the server waits on it; when it exits without being asked to, the
supervisor starts it again with the same options (host, port, data dir, token, fsync) after a
backoff of 0.1 s doubling to 5 s. Every restart is a WARNING, every failed restart an ERROR with
the server's own last lines, and it never gives up. Restarting loses nothing acknowledged: the
server replays its append-only log, and the kernel drops a killed server's directory lock.

A dispatcher that found the server already running (a standby, or a restarted dispatcher whose
server outlived it) watches the server's pid from ``server.json`` in its own data directory and
restarts it the same way if it dies. Two supervisors never fight: they take turns to start it
(``restart.lock`` in the data directory, ``restart_turn``), each checks first whether a server
answers already, and only one can take the port and the directory lock; the loser watches the
winner's server. A server that stopped cleanly removed its ``server.json``,
so only its starter's own restart brings it back: stopping ``atmosphere db`` on purpose sticks.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from atmosphere.errors import ConfigError

from .embedded import EmbeddedServer, is_running, log_tail, read_info, spawn
from .stream import Backoff

_log = logging.getLogger(__name__)

RESTART_BACKOFF = Backoff(initial=0.1, maximum=5.0)
WATCH_INTERVAL = 0.5  # seconds between liveness checks of a server another process started
RESTART_TIMEOUT = 120.0  # a large database takes a while to replay its log before it listens
STABLE_AFTER = 10.0  # a server up this long had recovered: its next death starts afresh
RESTART_LOCK = "restart.lock"  # in the data directory: held by the supervisor starting it
TURN_POLL = 0.05  # seconds between tries for the restart lock

Action = Literal["stop", "watch", "restart"]


def after_exit(*, halted: bool, answering: bool, ours: bool, died: bool) -> Action:
    """What to do once the server process is gone.

    ``ours``: we started it; ``died``: its ``server.json`` is still there (a clean stop
    removes it), which is how a watcher tells a crash from its owner stopping it on purpose.
    """
    if halted:
        return "stop"  # our owner is stopping: never restart
    if answering:
        return "watch"  # another supervisor restarted it already: watch theirs
    if not ours and not died:
        return "stop"  # stopped on purpose by whoever started it
    return "restart"


def crash_streak(streak: int, uptime: float, stable_after: float = STABLE_AFTER) -> int:
    """How many times in a row the server died soon after it started (0: it had been stable).

    A server that dies right after each restart (a corrupt file, a full disk) is restarted
    with the same backoff as one that cannot start, not in a tight loop.
    """
    return 0 if uptime >= stable_after else streak + 1


def describe_exit(returncode: int | None) -> str:
    """How a server process ended, for the log."""
    if returncode is None:
        return "is gone"  # not our child: its exit status is not ours to know
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def watched_pid(info: Any, port: int) -> int | None:
    """The pid in a ``server.json`` when it describes a server on ``port``, else None."""
    if not isinstance(info, dict) or info.get("port") != port:
        return None
    pid = info.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs: a zombie (dead, not yet reaped) does not.

    A watched server's parent is the dispatcher that started it, or whoever adopted it once
    that dispatcher died; a dead server stays a zombie until that parent reaps it, which a
    frozen parent never does and an init process may do late (a chaos run's watchers saw one
    death 1.2 s late). ``kill(pid, 0)`` succeeds on a zombie, so its state is read from
    ``/proc`` where there is one.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # no /proc (not Linux), or it is gone this instant: kill() said it exists
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")"
    state = stat.rpartition(b")")[2][1:2]
    return state in (b"Z", b"X")


@contextlib.contextmanager
def restart_turn(data_dir: Path, halted: threading.Event, timeout: float) -> Iterator[bool]:
    """Hold the data directory's restart lock while starting the server: True once held,
    False when ``halted`` or after ``timeout`` seconds (an ERROR: the holder is stuck; start
    anyway, the directory lock still keeps two servers apart).

    Both supervisors of a server (its owner and a watcher) see it die. Without turns, the
    second started its own server while the first one's was still starting; each such
    attempt failed on the directory lock only after a whole Python start-up, and a 10-minute
    chaos run saw five of them (1.5 s apart) slow one restart of the winner to 7.4 s.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / RESTART_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    _log.error(
                        "another process has held %s for %.0fs; starting the server anyway",
                        data_dir / RESTART_LOCK, timeout,
                    )  # fmt: skip
                    yield False
                    return
                if halted.wait(TURN_POLL):
                    yield False
                    return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Supervisor:
    """A daemon thread that keeps one embedded server up (see the module docstring)."""

    def __init__(
        self,
        server: EmbeddedServer,
        namespace: str,
        *,
        backoff: Backoff = RESTART_BACKOFF,
        watch_interval: float = WATCH_INTERVAL,
        restart_timeout: float = RESTART_TIMEOUT,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self.server = server
        self.namespace = namespace
        self.restarts = 0
        self._backoff = backoff
        self._watch_interval = watch_interval
        self._restart_timeout = restart_timeout
        self._stable_after = stable_after
        self._halted = threading.Event()
        self._watched: int | None = None  # the pid of another process's server
        self._up_since = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="atmosphere-db-supervisor")
        self._thread.daemon = True

    def start(self) -> Supervisor:
        """Start watching; the server must be ours (``proc``) or a pid must be watchable."""
        if self.server.proc is None and not self._adopt():
            return self
        self.server.supervisor = self
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the supervisor is still watching."""
        return self._thread.is_alive()

    def halt(self) -> None:
        """From now on, restart and replace nothing (the owner is stopping the server)."""
        with self.server.lock:
            self._halted.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # an operator must hear that nothing restarts the database any more
            _log.exception("the embedded database supervisor failed; the server is not watched")

    def _loop(self) -> None:
        streak = 0
        while True:
            ours = self.server.proc is not None
            pid, returncode = self._wait_gone()
            info = read_info(self.server.data_dir)
            action = after_exit(
                halted=self._halted.is_set(),
                answering=self._answering(),
                ours=ours,
                died=watched_pid(info, self.server.options.port) is not None,
            )
            if action == "stop":
                if not self._halted.is_set():
                    _log.info("embedded database server (pid %s) stopped; not restarting it", pid)
                return
            if action == "watch":
                if not self._adopt():
                    return
                continue
            uptime = time.monotonic() - self._up_since
            streak = crash_streak(streak, uptime, self._stable_after) if self.restarts else 0
            how = f"embedded database server (pid {pid}) {describe_exit(returncode)}"
            if streak == 0:
                _log.warning(
                    "%s; restarting it on %s (restarts so far: %d)",
                    how, self.server.url, self.restarts,
                )  # fmt: skip
            else:
                _log.error(
                    "%s again, %d time(s) in a row within %.0fs of starting; restarting it on %s "
                    "with backoff; its last lines:\n%s",
                    how, streak, self._stable_after, self.server.url, log_tail(self.server.log),
                )  # fmt: skip
            if not self._restart(streak):
                return

    def _wait_gone(self) -> tuple[int | None, int | None]:
        """Block until the server process is gone: (its pid, its exit code if it was ours)."""
        proc = self.server.proc
        if proc is not None:
            return proc.pid, proc.wait()
        pid = self._watched
        while not self._halted.wait(self._watch_interval):
            if pid is None or not pid_alive(pid):
                return pid, None
        return pid, None

    def _restart(self, failures: int) -> bool:
        """Start the server again until it listens (True) or we are halted (False)."""
        down_since = time.monotonic()
        if failures and self._halted.wait(self._backoff.delay(failures - 1)):
            return False
        while not self._halted.is_set():
            try:
                if not self._start_in_turn():
                    return self._adopt()
            except ConfigError as exc:
                if self._halted.is_set():
                    return False
                if self._answering():  # another supervisor won the race: watch its server
                    return self._adopt()
                delay = self._backoff.delay(failures)
                failures += 1
                _log.error(
                    "cannot restart the embedded database server on %s (attempt %d; next in "
                    "%.1fs): %s", self.server.url, failures, delay, exc,
                )  # fmt: skip
                if self._halted.wait(delay):
                    return False
                continue
            self.restarts += 1
            self._up_since = time.monotonic()
            _log.warning(
                "embedded database server restarted on %s (pid %s, restart %d, down %.1fs)",
                self.server.url, self.server.pid, self.restarts, time.monotonic() - down_since,
            )  # fmt: skip
            return True
        return False

    def _start_in_turn(self) -> bool:
        """Start the server holding the restart lock: True once it listens, False when another
        supervisor's server answers (it started one while we waited for our turn); ConfigError
        if it does not start, or we were halted meanwhile."""
        with restart_turn(self.server.data_dir, self._halted, self._restart_timeout):
            if self._halted.is_set():
                raise ConfigError("the supervisor is stopping")
            if self._answering():
                return False
            spawn(self.server.options, self._restart_timeout, self._own)
            return True

    def _own(self, proc: subprocess.Popen[bytes]) -> None:
        """The new process is ours, unless the owner is stopping: then it ends at once."""
        with self.server.lock:
            if not self._halted.is_set():
                self.server.proc = proc
                return
        proc.kill()

    def _adopt(self) -> bool:
        """Watch the server another process runs from our data dir (False: it is not ours)."""
        pid = watched_pid(read_info(self.server.data_dir), self.server.options.port)
        with self.server.lock:
            self.server.proc = None
        self._watched = pid
        if pid is None:
            _log.info(
                "the embedded database server on %s does not use the data directory %s; "
                "not supervising it", self.server.url, self.server.data_dir,
            )  # fmt: skip
            return False
        _log.info("watching the embedded database server on %s (pid %d)", self.server.url, pid)
        return True

    def _answering(self) -> bool:
        # Only a server that proves it holds our data directory counts: a squatter on the
        # port is not ours to watch, and restarting against it fails loudly (port in use).
        return is_running(self.server.url, self.namespace, data_dir=self.server.data_dir)
