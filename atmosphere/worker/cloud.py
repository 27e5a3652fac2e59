"""The cloud: the worker runtime that runs an app's tasks (rainCloud).

A cloud registers ``live/clouds/{cloudId}``, heartbeats, listens on ``live/inbox/{cloudId}``
and runs each assignment on a thread of its own (kept between jobs, ``threads.py``), at most
``slots`` at once not counting handlers that lent their slot while waiting on a sub-job. With
``prefetch`` N it advertises N more slots than it runs, so the next jobs already wait locally
when one finishes (opt-in: by default a busy cloud gets no job); the thread that finishes a
job runs the next waiting one itself, without waking another thread. A default cloud (one slot,
no prefetch) runs each job on its inbox stream's thread, no hand-off at all: nothing it must
see arrives while its one job runs, unless the handler lends its slot (waits on a sub-job);
then the cloud first moves its inbox to a new stream (``stream.py``).

Each attempt ends with the update ``completion.completion_writes`` builds, written through
an outbox (``completions.py``). A job's assignment stays in the inbox, held against the
cloud's slots, until its completion is committed (or given up); its handler's thread is free
as soon as the handler ends, so a prefetched job starts meanwhile (its completion is then
written by the outbox's writer). Every write carries the whole record when it is due
(``record.py``). ``stop()`` drains: it stops taking jobs, hands back unstarted ones, lets
running ones finish (up to a grace period), writes their completions and deregisters.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from atmosphere._running import RunningJob, current_job
from atmosphere.completion import judge
from atmosphere.db.base import Listener
from atmosphere.jobs import Finish, InvalidRecord, JobSpec
from atmosphere.types import JSON, LATER, Ticket
from atmosphere.worker._loop import LoopThread
from atmosphere.worker.completions import COMPLETION_PATIENCE, Completion, CompletionWriting
from atmosphere.worker.execution import (
    finish_done_with,
    finish_raised,
    finish_returned,
    finish_unknown_type,
    handback_writes,
    result_depth,
)
from atmosphere.worker.inbox import Inbox
from atmosphere.worker.record import RECORD_EVERY
from atmosphere.worker.record import LoadAverage as LoadAverage  # was defined here
from atmosphere.worker.record import record_json as record_json  # was defined here
from atmosphere.worker.stream import Attempt, InboxStream, close_listener
from atmosphere.worker.threads import JobThreads
from atmosphere.worker.uid import ensure_uid_free

if TYPE_CHECKING:
    from atmosphere.app import Atmosphere

log = logging.getLogger(__name__)

_RETURNED_KEPT = 1000
# What most handlers return, which is never awaitable: ``inspect.isawaitable`` costs three
# isinstance tests per job otherwise.
_PLAIN = frozenset({type(None), dict, list, str, int, float, bool})
_LATE_DONE_WITH = (
    "done_with for job %s came after its handler had already finished it by returning (a "
    "return, None included, finishes the job; this done_with is ignored). Fix: return LATER "
    "from the handler to finish with done_with later, or register it with "
    "app.handle_jobs({type: fn}), whose handlers finish only through done_with"
)


class Cloud(InboxStream, CompletionWriting):
    """Runs the tasks of one app: ``Cloud(app).run()`` blocks until ``request_stop()``."""

    def __init__(
        self,
        app: Atmosphere,
        *,
        name: str | None = None,
        concurrency: int = 1,
        prefetch: int = 0,
        grace: float = 30.0,
        patience: float = COMPLETION_PATIENCE,
        record_every: float = RECORD_EVERY,
    ) -> None:
        if concurrency < 1 or prefetch < 0:
            raise ValueError("concurrency must be at least 1 and prefetch at least 0")
        self.app = app
        self.settings = app.settings
        self.database = app.database
        self.paths = app.paths
        # Hardened, the rules give a cloud only the inbox named by its uid (docs/security.md).
        self.id = self.settings.db_uid or self.database.new_id()
        self.name = name or f"{app.name}@{socket.gethostname()}:{os.getpid()}"
        self._record_key = self.paths.rel(self.paths.clouds(self.id))  # in every write
        self.slots = concurrency
        self.prefetch = prefetch
        self.grace = grace
        self.patience = patience
        self.record_every = record_every
        self._record_at = -math.inf  # monotonic time of the last write that carried the record
        self._cond = threading.Condition()
        self._inbox = Inbox()
        self._attempts: dict[str, Attempt] = {}
        self._returned: dict[str, None] = {}  # recent jobs finished by returning (oldest first)
        self._handed_back: set[str] = set()  # running jobs deregistration gave back
        self._running = 0  # handlers running
        self._pending = 0  # completions given to the outbox, not yet committed or given up
        self._lent = 0
        self._done = 0
        self._failed = 0
        self._state = "up"
        self._accepting = False
        self._registered = False
        self._started = time.time()
        self._fixed: tuple[int, dict[str, JSON]] | None = None  # (types, record fields)
        self._record_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._beat_stop = threading.Event()
        self._beat_wake = threading.Event()
        self._halt = threading.Event()  # write retries give up once set
        self._listener: Listener | None = None
        # A default cloud runs its one job on the inbox stream's thread (no hand-off).
        self._runs_on_stream = concurrency == 1 and prefetch == 0
        # The inbox stream's number: events of a stream moved away from are ignored.
        self._generation = 0
        self._stream_busy: int | None = None  # the stream whose thread runs a job, if any
        self._loop = LoopThread(f"cloud-loop-{self.id}")  # for async def handlers
        self._threads = JobThreads("cloud-job")
        self._beat: threading.Thread | None = None
        self._outbox = self._completion_outbox()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on the inbox, register and start heartbeating (returns at once).

        Raises:
            ConfigError: hardened, another live cloud runs under this uid (worker/uid.py).
        """
        if self.settings.db_uid is not None:
            ensure_uid_free(
                self.database,
                self.paths.clouds(self.id),
                self.id,
                self.settings.dead_after,
                self._stop_requested,
            )
        with self._cond:
            self._accepting = True
            self._registered = True
        self.app.attach(self)
        with self._cond:
            self._listener = self._listen_inbox()
        # Waits for the database if it is not up yet; a stop request ends the wait.
        self._commit(lambda: {}, what="registration", cancel=self._stop_requested)
        self._beat = threading.Thread(target=self._heartbeat, name="cloud-heartbeat", daemon=True)
        self._beat.start()
        log.info(
            "cloud %s (%s) up: types %s, %d slot(s)",
            self.name,
            self.id,
            ", ".join(sorted(self.app.tasks)),
            self.slots,
        )

    def __enter__(self) -> Cloud:
        """``with Cloud(app) as cloud:`` (or ``with app.start_cloud():``) runs it in this process."""
        if not self._registered:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def run(self) -> None:
        """Start, then block until ``request_stop()`` (SIGTERM / Ctrl-C in the CLI), then drain."""
        self.start()
        while not self._stop_requested.wait(0.5):
            pass
        self.stop()

    def request_stop(self) -> None:
        """Ask ``run()`` to drain and return (safe from a signal handler)."""
        self._stop_requested.set()

    def stop(self, grace: float | None = None) -> None:
        """Drain: stop taking jobs, hand back unstarted ones, finish running ones, deregister."""
        grace = self.grace if grace is None else grace
        with self._cond:
            if not self._accepting:
                return
            self._accepting = False
            self._state = "draining"
            unstarted = self._inbox.hand_back_waiting()
        log.info("cloud %s draining: handing back %d job(s)", self.name, len(unstarted))
        deadline = time.monotonic() + grace
        self._flush_completions(deadline)
        self._commit(
            lambda: handback_writes(self.paths, self.id, unstarted), what="hand back", limit=grace
        )
        with self._cond:
            while self._running and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            if self._running:
                log.warning(
                    "%d job(s) still running after %.1fs; handing them back", self._running, grace
                )
        # The deregistration hands back what the inbox still holds: a finished job whose
        # completion were still queued would run again.
        self._flush_completions(deadline)
        self._beat_stop.set()
        self._beat_wake.set()
        with self._cond:
            retired = self._retire_listener()
        close_listener(*retired)
        self._deregister(limit=max(grace, 5.0))
        self._halt.set()
        self._outbox.close(5.0)
        self._threads.close()
        self._loop.close()
        self.app.attach(None)
        log.info("cloud %s stopped", self.name)

    def _deregister(self, limit: float) -> None:
        def writes() -> dict[str, JSON]:
            leftovers = self.database.get(self.paths.inbox(self.id)) or {}
            specs: list[JobSpec] = []
            out: dict[str, JSON] = {}
            for job_id, raw in leftovers.items() if isinstance(leftovers, dict) else []:
                try:
                    specs.append(JobSpec.from_json(raw, job_id))
                except InvalidRecord:
                    out[self.paths.rel(self.paths.inbox(self.id, job_id))] = None
            with self._cond:
                self._registered = False
                self._handed_back = {spec.id for spec in specs}
            out.update(handback_writes(self.paths, self.id, specs))
            out[self._record_key] = None
            return out

        self._commit(writes, what="deregistration", limit=limit, with_record=False)

    # -- running jobs --------------------------------------------------------------------------

    def _fill_slots(self) -> None:
        """Start waiting jobs while a slot is free (caller holds the lock)."""
        while (attempt := self._claim_next()) is not None:
            self._threads.run(functools.partial(self._run, attempt))

    def _claim_next(self) -> Attempt | None:
        """The oldest waiting job, now running in a free slot; None if no slot is free or no
        job waits (caller holds the lock). The caller runs it."""
        if not self._accepting or self._running - self._lent >= self.slots:
            return None
        spec = self._inbox.start_next()
        if spec is None:
            return None
        self._running += 1
        attempt = self._attempts[spec.id] = Attempt(spec)
        return attempt

    def _run(self, attempt: Attempt) -> None:
        """Run ``attempt``, then each job its completion claims, on this thread: a prefetched
        job starts without waking another thread (a hand-off is a wake-up and a wait for the
        GIL, the larger part of the way from the inbox event to the handler)."""
        following: Attempt | None = attempt
        while following is not None:
            started = time.time()
            try:
                finish = self._execute(following)
            except BaseException as exc:  # a worker thread must always complete its job
                finish = finish_raised(exc)
            on_stream = following.on_stream  # still on the stream's thread, not moved away
            following = self._complete(following.spec, finish, started)
            if following is not None:
                following.on_stream = on_stream

    def _execute(self, attempt: Attempt) -> Finish:
        spec = attempt.spec
        task = self.app.tasks.get(spec.type)
        if task is None:
            return finish_unknown_type(spec, self.name)
        ticket = Ticket(type=spec.type, name=spec.name, id=spec.id)
        raised: BaseException | None = None
        value: JSON = None
        running = RunningJob(spec.id, functools.partial(self._lending, attempt))
        token = current_job.set(running)
        try:
            value = task.fn(ticket, spec.data)
            if type(value) not in _PLAIN and inspect.isawaitable(value):  # an async def
                # handler: it runs on the cloud's event loop
                value = self._loop.run(value, running)
        except Exception as exc:
            raised = exc
        finally:
            current_job.reset(token)
        if raised is None and (value is LATER or task.done_with_only):
            # The original recursion style: submit sub-jobs with callbacks, return LATER, call
            # done_with from a callback. Waiting on sub-jobs lends the slot, as get() does.
            # A handle_jobs handler always finishes this way; what it returns means nothing.
            lend = running.waits_on_children()
            with self._lending(attempt) if lend else contextlib.nullcontext():
                if not self._await_done_with(attempt):
                    return finish_raised(RuntimeError("the cloud stopped before done_with"))
        with attempt.lock:
            if attempt.finish is None:  # done_with was not called: return/raise decides
                attempt.finish = (
                    finish_returned(
                        value, self.settings.max_data_bytes, depth=result_depth(self.paths, spec)
                    )
                    if raised is None
                    else finish_raised(raised)
                )
                attempt.returned = True
            elif raised is not None:
                log.warning("job %s raised after done_with; done_with wins: %r", spec.id, raised)
            return attempt.finish

    def _await_done_with(self, attempt: Attempt) -> bool:
        with attempt.lock:
            if attempt.finish is not None:
                return True
            event = attempt.event = threading.Event()
        while not event.wait(1.0):
            if self._halt.is_set():
                return False
        return True

    def done_with(self, ticket: Ticket, error: Any, result: JSON) -> bool:
        """Finish a running job from any thread; False if it already finished."""
        job_id = ticket.get("id") if isinstance(ticket, dict) else None
        with self._cond:
            attempt = self._attempts.get(str(job_id))
            returned = str(job_id) in self._returned
        if attempt is None:
            if returned:
                log.error(_LATE_DONE_WITH, job_id)
            else:
                log.warning("done_with for job %s, which is not running here", job_id)
            return False
        with attempt.lock:
            if attempt.finish is not None and attempt.returned:
                log.error(_LATE_DONE_WITH, job_id)
                return False
            if attempt.finish is not None:
                log.warning("done_with called twice for job %s; the first one counts", job_id)
                return False
            attempt.finish = finish_done_with(
                error,
                result,
                self.settings.max_data_bytes,
                depth=result_depth(self.paths, attempt.spec),
            )
            event = attempt.event
        if event is not None:
            event.set()
        return True

    def _complete(self, spec: JobSpec, finish: Finish, started: float) -> Attempt | None:
        """Count the attempt finished and send its completion; the next waiting job, claimed
        into the slot this one frees, for the calling thread to run (None: none waits)."""
        verdict = judge(spec, finish)
        with self._cond:
            self._running -= 1
            self._pending += 1
            if finish.ok:
                self._done += 1
            else:
                self._failed += 1
            attempt = self._attempts.pop(spec.id, None)
            self._inbox.finish(spec.id)
            if attempt is not None and attempt.returned:  # a late done_with can say why
                self._returned[spec.id] = None
                while len(self._returned) > _RETURNED_KEPT:
                    self._returned.pop(next(iter(self._returned)))
            # The handler is done, so a waiting job may start (on this thread); this job's
            # assignment stays held (routing counts the inbox) until its completion is committed.
            following = self._claim_next()
            self._fill_slots()  # a slot lent back meanwhile, say
            if not self._accepting:  # only a drain waits on the lock, for handlers to end
                self._cond.notify_all()
        if verdict.final and not finish.ok and spec.reply_to is None and spec.chain is None:
            log.error("fire-and-forget job %s (%s) failed: %s", spec.id, spec.type, finish.error)
        done = Completion(spec, finish, started)
        try:
            self._send_completion(done, verdict, inline=following is None)
        except Exception as exc:  # noqa: BLE001 - the job claimed to run next must still run
            # A completion that cannot even be built (a bug) ends the job the way a refused
            # write does (InvalidResult, else dropped): bounded, and its slot is freed.
            log.exception(
                "cloud %s: the completion of job %s could not be built", self.name, spec.id
            )
            self._completions_failed([done], exc)
        return following

    @contextmanager
    def _lending(self, attempt: Attempt) -> Iterator[None]:
        """Lend ``attempt``'s slot while its handler waits on a sub-job (recursion)."""
        self._move_inbox_stream(attempt)
        with self._cond:
            self._lent += 1
            self._fill_slots()
        self._write_once({})
        try:
            yield
        finally:
            with self._cond:
                self._lent -= 1
            self._write_once({})

    # -- for tests and the status of this process ------------------------------------------------

    @property
    def running(self) -> int:
        """How many jobs run right now (lending ones included)."""
        with self._cond:
            return self._running

    @property
    def unwritten(self) -> int:
        """How many completions wait to be committed (their assignments are still held)."""
        with self._cond:
            return self._pending

    @property
    def lent(self) -> int:
        """How many slots are lent by handlers waiting on sub-jobs."""
        with self._cond:
            return self._lent
