"""One asyncio event loop in a thread of its own, for a cloud's ``async def`` handlers.

Each job still has its worker thread (slots count jobs, and the completion path is the same for
every handler); an async handler's coroutine runs on this shared loop while its thread waits,
so many of them await at once on one loop, up to the cloud's slots.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

from ._running import RunningJob, current_job

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread, started at first use."""

    def __init__(self, name: str = "atmosphere-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, awaitable: Awaitable[T], job: RunningJob | None = None) -> T:
        """Run ``awaitable`` on the loop as ``job`` (so ``await handle`` inside lends its slot);
        block the calling thread until it is done, and return or raise what it did."""
        future = asyncio.run_coroutine_threadsafe(_as_job(awaitable, job), self._started())
        return future.result()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the loop (coroutines still awaiting are abandoned) and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


async def _as_job(awaitable: Awaitable[T], job: RunningJob | None) -> T:
    current_job.set(job)  # in this task's own context: the loop's other jobs keep theirs
    return await awaitable
