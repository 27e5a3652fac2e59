"""Handle: the one response to a submitted job or chain (wait, call back, or await)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Generator
from typing import Any

from ._running import current_job
from .errors import AtmosphereError, JobError, ResponseTimeout
from .types import JSON, Ticket

# callback(error, data): error is None on success (the original library's signature).
Callback = Callable[[JobError | None, JSON], None]
# How a settled handle runs its callbacks (the maker hands them to its callback thread).
Scheduler = Callable[[Callable[[], None]], None]


def _run_now(fn: Callable[[], None]) -> None:
    fn()


class Handle:
    """The one response to a submitted job or chain: ``get()``, ``then(callback)`` or ``await``."""

    def __init__(
        self, job_id: str, ticket: Ticket, *, tracked: bool = True, schedule: Scheduler = _run_now
    ) -> None:
        self._id = job_id
        self._ticket = ticket
        self._tracked = tracked
        self._schedule = schedule
        self._lock = threading.Lock()  # guards the response and the callbacks
        self._settled = False
        # Held until the response arrives; get() waits by taking it (and gives it straight
        # back, for the next waiter). A bare lock wakes a waiter with one release, where an
        # Event's condition allocates a lock per wait and wakes the waiter into its own lock.
        self._latch = threading.Lock()
        self._latch.acquire()
        self._error: JobError | None = None
        self._result: JSON = None
        self._callbacks: list[Callback] = []

    def __repr__(self) -> str:
        state = "done" if self.done() else ("pending" if self._tracked else "untracked")
        return f"<Handle {self._ticket['type']}:{self._id} {state}>"

    @property
    def id(self) -> str:
        """The job id (the chain id for a chain): the key of its reply."""
        return self._id

    @property
    def ticket(self) -> Ticket:
        """``{type, name, id}`` of the job (of the chain's first job, for a chain)."""
        return self._ticket

    @property
    def tracked(self) -> bool:
        """False for fire-and-forget submissions, which get no response."""
        return self._tracked

    def done(self) -> bool:
        """True once the response (result, error or timeout) has arrived."""
        return self._settled

    def get(self, timeout: float | None = None) -> JSON:
        """Wait for the response and return the result, or raise the job's typed error.

        Args:
            timeout: stop waiting after this many seconds (the job's own deadline still
                applies; None waits for it).

        Raises:
            JobFailed: the handler raised or called done_with with an error.
            JobTimeout: no response by the job's deadline.
            ResponseTimeout: (a JobTimeout) none within ``timeout``; the job has not timed
                out and the handle stays usable.
            UnknownTaskType: the cloud that got the job has no task for its type.
        """
        self._require_tracked()
        if not self._settled:
            running = current_job.get()
            if running is None:
                finished = self._wait_settled(timeout)
            else:
                # A handler waiting on a sub-job frees its slot so the sub-job can run there.
                with running.lend():
                    finished = self._wait_settled(timeout)
            if not finished:
                raise ResponseTimeout(
                    f"still waiting for job {self._id} after {timeout}s (it has not timed out)",
                    job_id=self._id,
                    job_type=self._ticket["type"],
                )
        if self._error is not None:
            raise self._error
        return self._result

    def then(self, callback: Callback) -> Handle:
        """Call ``callback(error, data)`` once the response arrives (at once if it has)."""
        self._require_tracked()
        with self._lock:
            if not self._settled:
                self._callbacks.append(callback)
                return self
        error, result = self._error, self._result
        self._schedule(functools.partial(callback, error, result))
        return self

    def __await__(self) -> Generator[Any, None, JSON]:
        """``await handle`` gives the result or raises the typed error, without blocking.

        Inside an ``async def`` handler the wait lends the job's slot, as ``get()`` does.
        """
        self._require_tracked()
        return self._wait().__await__()

    async def _wait(self) -> JSON:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JSON] = loop.create_future()

        def settle(error: JobError | None, result: JSON) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def on_response(error: JobError | None, result: JSON) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, error, result)

        self.then(on_response)
        running = current_job.get()
        if running is None or self.done():
            return await future
        with running.lend():
            return await future

    def _settle(self, error: JobError | None, result: JSON) -> bool:
        """Record the response; only the first call counts. Returns whether this one did."""
        with self._lock:
            if self._settled:
                return False
            self._error, self._result = error, result
            callbacks, self._callbacks = self._callbacks, []
            self._settled = True
        self._latch.release()  # once: only the first settle gets here
        for callback in callbacks:
            self._schedule(functools.partial(callback, error, result))
        return True

    def _wait_settled(self, timeout: float | None) -> bool:
        """Wait until the response is in (at most ``timeout`` seconds); whether it is."""
        if timeout is None:
            took = self._latch.acquire()
        else:
            took = self._latch.acquire(timeout=min(max(timeout, 0.0), threading.TIMEOUT_MAX))
        if took:
            self._latch.release()
        return took

    def _require_tracked(self) -> None:
        # An untracked handle is settled only when its submission could not be written: say so.
        if not self._tracked and not self._settled:
            raise AtmosphereError(
                f"job {self._id} was submitted fire-and-forget (app.submit(job) without a "
                "callback, or forget=True): no response is tracked. To get one, pass a "
                "callback, app.submit(job, callback), or use task.submit() / task.delay()"
            )
