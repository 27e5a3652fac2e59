"""The threads a cloud runs its jobs on, kept between jobs.

Starting a thread per job cost about 80 us of CPU and a handshake that ``Thread.start()``
waits on, under the cloud's lock, on the loaded 2-core machine; handing a job to a thread that
waits for one is a single wake-up, through a ``queue.SimpleQueue`` (C: a put and a get cost
well under a microsecond each, where a ``threading.Condition``'s notify and wait run some
twenty lines of Python on the way from the inbox event to the handler). A thread waits ``keep``
seconds for its next job, then ends, so a cloud that was busy once does not keep its peak of
threads. There is no cap: a cloud starts a job only into a free slot, and a handler that lends
its slot (waiting on a sub-job) keeps its thread, so the cloud asks for as many threads as it
has jobs running.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class JobThreads:
    """Runs each job given to ``run`` on a waiting thread, or on a new one if none waits."""

    def __init__(self, name: str, keep: float = 60.0) -> None:
        self._name = name
        self._keep = keep
        self._lock = threading.Lock()
        # A job (or None: end) for each waiting thread that ``run`` or ``close`` claimed.
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._waiting = 0  # threads waiting for a job that no job has claimed yet
        self._closed = False
        self._count = itertools.count(1)

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a thread of its own (it must not raise: an error is only logged)."""
        with self._lock:
            if self._waiting:
                self._waiting -= 1  # claimed: that thread takes this job from the queue
                self._jobs.put(job)
                return
        name = f"{self._name}-{next(self._count)}"
        threading.Thread(target=self._serve, args=(job,), name=name, daemon=True).start()

    def close(self) -> None:
        """Let waiting threads end now; running ones end after their job."""
        with self._lock:
            self._closed = True
            for _ in range(self._waiting):
                self._jobs.put(None)
            self._waiting = 0

    def _serve(self, job: Callable[[], None] | None) -> None:
        while job is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - the thread goes on to the next job
                log.exception("a job thread's job raised")
            job = self._next()

    def _next(self) -> Callable[[], None] | None:
        with self._lock:
            if self._closed:
                return None
            self._waiting += 1
        try:
            return self._jobs.get(timeout=self._keep)
        except queue.Empty:
            with self._lock:
                if self._waiting:  # unclaimed: no job is on its way to this thread
                    self._waiting -= 1
                    return None
            # Claimed as the wait ran out: its job (or None) was put under the lock, so it is
            # in the queue now.
            return self._jobs.get()
