"""The jobs benchmark's completion counter: tasks report to a pipe, the bench counts."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.completions import Completions, report

REPORT_TWICE = (
    "import sys; from bench.completions import report; report(sys.argv[1]); report(sys.argv[1])"
)


def test_completions_from_other_processes_are_all_counted() -> None:
    with Completions() as done:
        for _ in range(3):
            subprocess.run([sys.executable, "-c", REPORT_TWICE, done.path], check=True, timeout=30)
        before = time.perf_counter()
        at = done.wait(6, timeout=10)
        assert done.counted == 6
        assert before <= at <= time.perf_counter()


def test_wait_gives_up_after_its_timeout_saying_how_many_came() -> None:
    with Completions() as done:
        report(done.path)
        with pytest.raises(TimeoutError, match="1 of 2 completions"):
            done.wait(2, timeout=0.2)


def test_report_fails_at_once_when_nobody_counts(tmp_path: Path) -> None:
    pipe = tmp_path / "completions"
    os.mkfifo(pipe)  # no reader: a blocking open would hang the task
    with pytest.raises(OSError) as refused:
        report(str(pipe))
    assert refused.value.errno == errno.ENXIO
