"""The threads a cloud runs its jobs on, kept between jobs.

Starting a thread per job cost about 80 us of CPU and a handshake that ``Thread.start()``
waits on, under the cloud's lock, on the loaded 2-core machine; handing a job to a thread that
waits for one is a single wake-up. A thread waits ``keep`` seconds for its next job, then ends,
so a cloud that was busy once does not keep its peak of threads. There is no cap: a cloud starts
a job only into a free slot, and a handler that lends its slot (waiting on a sub-job) keeps its
thread, so the cloud asks for as many threads as it has jobs running.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class JobThreads:
    """Runs each job given to ``run`` on a waiting thread, or on a new one if none waits."""

    def __init__(self, name: str, keep: float = 60.0) -> None:
        self._name = name
        self._keep = keep
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._waiting = 0  # threads waiting for a job
        self._closed = False
        self._count = itertools.count(1)

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a thread of its own (it must not raise: an error is only logged)."""
        with self._cond:
            # Each queued job has a waiting thread of its own to take it.
            if self._waiting > len(self._jobs):
                self._jobs.append(job)
                self._cond.notify()
                return
        name = f"{self._name}-{next(self._count)}"
        threading.Thread(target=self._serve, args=(job,), name=name, daemon=True).start()

    def close(self) -> None:
        """Let waiting threads end now; running ones end after their job."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _serve(self, job: Callable[[], None] | None) -> None:
        while job is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - the thread goes on to the next job
                log.exception("a job thread's job raised")
            job = self._next()

    def _next(self) -> Callable[[], None] | None:
        with self._cond:
            self._waiting += 1
            try:
                deadline = time.monotonic() + self._keep
                while not self._jobs:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        return None
                    self._cond.wait(left)
                return self._jobs.popleft()
            finally:
                self._waiting -= 1
