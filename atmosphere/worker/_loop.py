"""One asyncio event loop in a thread of its own, for a cloud's ``async def`` handlers.

Each job still has its worker thread (slots count jobs, and the completion path is the same for
every handler); an async handler's coroutine runs on this shared loop while its thread waits,
so many of them await at once on one loop, up to the cloud's slots.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable
from typing import TypeVar

from atmosphere._running import RunningJob, current_job

T = TypeVar("T")
log = logging.getLogger(__name__)


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
        """Cancel what still runs on the loop (its waiting threads get CancelledError, so no
        job thread waits forever), then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=5)
        except Exception as exc:  # stopping anyway: a coroutine deaf to cancel keeps its thread
            log.warning("%s: could not cancel its coroutines: %r", self._name, exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)  # the tasks' done callbacks (which wake their threads) run now


async def _as_job(awaitable: Awaitable[T], job: RunningJob | None) -> T:
    current_job.set(job)  # in this task's own context: the loop's other jobs keep theirs
    return await awaitable
