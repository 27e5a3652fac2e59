"""Completions counted by the task itself, the same cheap way on both sides of the jobs bench.

A fire-and-forget job has no response to await, so its end is when its handler ran. Both
systems' ``count`` task (``bench/tasks.py``, ``bench/celery_app.py``) call ``report(path)``:
one byte written to a named pipe the benchmark reads. A pipe rather than a UDP datagram because
it cannot drop: 5,000 one-byte writes fit in its 64 KiB buffer, so a task never blocks and a
bench process descheduled for a moment loses nothing. The same function on both sides, so the
comparison stays fair.
"""

from __future__ import annotations

import os
import select
import tempfile
import time
from pathlib import Path

_writers: dict[str, int] = {}  # path -> open fd, per worker process: one open per batch


def report(path: str) -> None:
    """Count one completion: one byte to the bench's pipe at ``path``."""
    fd = _writers.get(path)
    if fd is None:
        # Non-blocking open fails at once (ENXIO) if the bench is not reading, instead of hanging.
        fd = _writers[path] = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b".")


class Completions:
    """A fresh named pipe; ``wait(n)`` counts what the tasks reported until ``n`` arrived."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="atmosphere-bench-count-")
        self.path = str(Path(self._dir.name) / "completions")
        os.mkfifo(self.path)
        # Read-write keeps the pipe open with no writer, so a read never sees end-of-file.
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        self.counted = 0

    def wait(self, n: int, timeout: float) -> float:
        """Block until ``n`` completions are counted; the ``perf_counter()`` when the n-th was.

        Raises:
            TimeoutError: fewer than ``n`` arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.counted < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.counted} of {n} completions within {timeout}s")
            readable, _, _ = select.select([self._fd], [], [], left)
            if readable:
                self.counted += len(os.read(self._fd, 65536))
        return time.perf_counter()

    def close(self) -> None:
        """Close and remove the pipe."""
        os.close(self._fd)
        self._dir.cleanup()

    def __enter__(self) -> Completions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
