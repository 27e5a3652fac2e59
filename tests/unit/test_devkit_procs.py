"""devkit.procs.ChildProcess, the one start-and-wait shared by tests, bench and chaos: with
``python -c`` children, so each case is a real process but needs no server."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from devkit.procs import ChildProcess


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_wait_ready_returns_once_the_marker_is_printed_and_seen_gets_that_line() -> None:
    class Reader(ChildProcess):
        line = ""

        def seen(self, ready_line: str) -> None:
            self.line = ready_line

    child = Reader(
        python("import time; print('booting'); print('up at 7', flush=True); time.sleep(60)"),
        "up at",
    )
    try:
        child.wait_ready(20)
        assert child.line == "up at 7\n"
        assert child.alive()
    finally:
        child.kill()


def test_a_child_that_exits_before_it_is_ready_fails_at_once_not_at_the_timeout() -> None:
    child = ChildProcess(python("print('bad config'); raise SystemExit(3)"), "listening")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"exited \(3\) before it was ready:\nbad config"):
        child.wait_ready(60, "the server")
    assert time.monotonic() - started < 30


def test_stop_kills_a_child_that_ignores_sigterm_and_raises() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    child = ChildProcess(python(code), "up")
    child.wait_ready(20)
    with pytest.raises(subprocess.TimeoutExpired):
        child.stop(timeout=0.5)
    assert not child.alive()
