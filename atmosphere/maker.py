"""The maker: submits jobs and delivers each caller its one response (rainMaker).

One Maker per app per process, started lazily at the first tracked submission. Submissions go
through an outbox (``outbox.py``): ``submit()`` returns the handle at once and everything
submitted while a write is in flight rides in the next one, one multi-path PATCH; a write that
fails settles its handles with ``SubmitFailed``. Closing the maker, or the interpreter exiting,
writes what is queued first. It listens on
``replies/{makerId}``, settles each handle with the first reply for its id, enforces every
handle's deadline with its own clock (``JobTimeout``; a later reply is ignored), and deletes
delivered replies in batches so cleaning up costs a fraction of a write per job.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .db.base import Database, Listener
from .errors import (
    InvalidJob,
    JobError,
    JobFailed,
    JobTimeout,
    JobTooLarge,
    ResponseTimeout,
    SubmitFailed,
    job_error_from_json,
)
from .handle import Callback, Handle
from .jobs import InvalidRecord, Reply
from .outbox import Entry, Outbox, merged
from .paths import Paths
from .storable import encoded_size, plan_batches
from .types import JSON, Ticket

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0  # seconds between batched deletes of delivered replies
BATCH = 500  # jobs per update in submit_many, at most
# Encoded bytes per update, at most: a quarter of the embedded server's body limit
# (localdb ``Config.max_body``, 32 MB), because a client that falls back to the stdlib
# encoder writes non-ASCII text as \u escapes, up to three times its UTF-8 size.
MAX_UPDATE_BYTES = 8 * 1024 * 1024
# Submissions queued and not yet written, at most: beyond it submit() waits for the writer, so
# a loop that submits faster than the database takes them cannot grow memory without bound.
MAX_QUEUED = 20 * BATCH
EXIT_FLUSH_TIMEOUT = 10.0  # seconds the interpreter's exit waits for queued submissions
_STOP = object()


@dataclass(frozen=True)
class Submission:
    """One job or chain ready to write: its update, reply id, ticket and how long to wait.

    ``wait`` None is fire-and-forget: no handle is tracked.
    """

    writes: Mapping[str, JSON]
    reply_id: str
    ticket: Ticket
    wait: float | None


class Maker:
    """Submits jobs for one app and delivers each reply id at most once."""

    def __init__(
        self,
        database: Database,
        paths: Paths,
        *,
        maker_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.paths = paths
        # A limited user's replies can only be its uid's (docs/security.md); else a fresh id.
        self.id = maker_id or database.new_id()
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[str, Handle] = {}
        self._deadlines: list[tuple[float, int, str]] = []
        # When the deadline thread wakes next, while it sleeps (None while it runs): a new
        # deadline wakes it only if it is earlier, not at every submission.
        self._tick_sleeps_until: float | None = None
        self._seq = itertools.count()
        self._trash: list[str] = []
        self._started = False
        self._closed = False
        self._listener: Listener | None = None
        self._callbacks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._outbox: Outbox[tuple[Submission, Handle]] | None = None

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, submission: Submission, *, callback: Callback | None = None) -> Handle:
        """Queue one submission for the outbox's next update and return its handle at once.

        The handle is registered before the write so a fast reply finds it. A write that fails
        settles the handle with ``SubmitFailed`` (raised by ``get()``, passed to callbacks).

        Raises:
            InvalidJob: the submission is larger than one update may be.
            RuntimeError: the maker is closed.
        """
        size = encoded_size(submission.writes)
        if size > MAX_UPDATE_BYTES:
            raise InvalidJob(_too_large(submission, size))
        outbox = self._start_outbox()
        handle = self._register(submission)
        if callback is not None:
            handle.then(callback)
        try:
            outbox.put(Entry(submission.writes, size, (submission, handle)))
        except RuntimeError:
            self._forget([handle])
            raise
        return handle

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submission made so far is written (or has failed its handle)."""
        outbox = self._outbox
        return outbox is None or outbox.flush(timeout)

    def _start_outbox(self) -> Outbox[tuple[Submission, Handle]]:
        outbox = self._outbox
        if outbox is not None and not self._closed:
            return outbox  # (no lock once it runs: a close() racing this fails outbox.put())
        with self._cond:
            if self._closed:
                raise RuntimeError("this maker is closed")
            if self._outbox is None:
                self._outbox = Outbox(
                    self._write_updates,
                    self._failed,
                    max_jobs=BATCH,
                    max_bytes=MAX_UPDATE_BYTES,
                    max_queued=MAX_QUEUED,
                    name=f"maker-outbox-{self.id}",
                )
                # Daemon threads die with the interpreter: write what a script queued last.
                atexit.register(self._flush_at_exit)
            return self._outbox

    def _write_updates(self, batch: list[Entry[tuple[Submission, Handle]]]) -> None:
        self.database.update(self.paths.root, merged(batch))

    def _failed(self, owners: list[tuple[Submission, Handle]], exc: BaseException) -> None:
        self._forget([handle for _, handle in owners])
        for submission, handle in owners:
            ticket = submission.ticket
            handle._settle(
                SubmitFailed(
                    f"job {submission.reply_id} ({ticket['type']}) may not have been "
                    f"submitted: the database write failed: {exc}",
                    job_id=submission.reply_id,
                    job_type=ticket["type"],
                ),
                None,
            )

    def _flush_at_exit(self) -> None:
        if not self.flush(EXIT_FLUSH_TIMEOUT):
            log.error("maker %s: queued submissions still unwritten at exit", self.id)

    def submit_many(self, submissions: list[Submission]) -> list[Handle]:
        """Write many job submissions in a few updates; their handles.

        Each update carries at most ``BATCH`` jobs and ``MAX_UPDATE_BYTES``. A job too large
        for any update is not written: its handle fails with ``JobTooLarge`` (an InvalidJob),
        and the others go ahead.
        """
        self.flush()  # what submit() queued goes first: submissions are written in order
        handles = [self._register(s) for s in submissions]
        sizes = [encoded_size(s.writes) for s in submissions]
        groups, too_large = plan_batches(sizes, BATCH, MAX_UPDATE_BYTES)
        for i in too_large:
            self._refuse(submissions[i], handles[i], sizes[i])
        for n, group in enumerate(groups):
            try:
                self._write([submissions[i] for i in group], [handles[i] for i in group])
            except BaseException:
                # Earlier updates were written and stay tracked.
                self._forget([handles[i] for later in groups[n:] for i in later])
                raise
        return handles

    def _refuse(self, submission: Submission, handle: Handle, size: int) -> None:
        message = _too_large(submission, size)
        log.error("%s", message)
        self._forget([handle])
        ticket = submission.ticket
        handle._settle(
            JobTooLarge(message, job_id=submission.reply_id, job_type=ticket["type"]), None
        )

    def _register(self, submission: Submission) -> Handle:
        if submission.wait is None:
            return Handle(submission.reply_id, submission.ticket, tracked=False)
        if not self._started:  # (the lock only until the threads run)
            self._start()
        handle = Handle(submission.reply_id, submission.ticket, schedule=self._schedule)
        with self._cond:
            self._pending[submission.reply_id] = handle
            deadline = self._clock() + submission.wait
            heapq.heappush(self._deadlines, (deadline, next(self._seq), submission.reply_id))
            if wakes_too_late(self._tick_sleeps_until, deadline):
                self._cond.notify_all()
        return handle

    def _write(self, submissions: list[Submission], handles: list[Handle]) -> None:
        writes: dict[str, JSON] = {}
        for submission in submissions:
            writes.update(submission.writes)
        try:
            self.database.update(self.paths.root, writes)
        except BaseException:
            self._forget(handles)
            raise

    def _forget(self, handles: list[Handle]) -> None:
        with self._cond:
            for handle in handles:
                self._pending.pop(handle.id, None)

    @property
    def pending(self) -> int:
        """How many handles still wait for their response."""
        with self._cond:
            return len(self._pending)

    # -- receiving ------------------------------------------------------------------------------

    def _on_event(self, kind: str, path: str, data: JSON) -> None:
        if path == "/":
            items = list(data.items()) if isinstance(data, dict) else []
        else:
            parts = path.strip("/").split("/")
            if len(parts) != 1:
                log.warning("ignoring a partial write to reply %s", path)
                return
            items = [(parts[0], data)]
        for reply_id, raw in items:
            if raw is not None:
                self._deliver(reply_id, raw)

    def _deliver(self, reply_id: str, raw: JSON) -> None:
        with self._cond:
            handle = self._pending.pop(reply_id, None)
            self._trash.append(reply_id)
            self._compact_deadlines()
        if handle is None:
            log.debug(
                "reply %s has no waiting handle (late, or already answered); ignored", reply_id
            )
            return
        handle._settle(*_response(raw, handle))

    def _on_status(self, connected: bool) -> None:
        if connected:
            log.info("maker %s: reply stream connected", self.id)
        else:
            log.warning("maker %s: reply stream lost; replies will arrive on reconnect", self.id)

    # -- background threads --------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("this maker is closed")
            self._started = True
        for target, name in ((self._tick, "deadlines"), (self._run_callbacks, "callbacks")):
            thread = threading.Thread(target=target, name=f"maker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._listener = self.database.listen(
            self.paths.replies(self.id), self._on_event, on_status=self._on_status
        )

    def _schedule(self, fn: Callable[[], None]) -> None:
        self._callbacks.put(fn)

    def _run_callbacks(self) -> None:
        # Callbacks run here, never on the stream thread, so one that blocks (say, on another
        # handle's get()) cannot stop replies from being delivered.
        while True:
            fn = self._callbacks.get()
            if fn is _STOP:
                return
            try:
                fn()
            except Exception:
                log.exception("a job callback raised")

    def _tick(self) -> None:
        next_flush = self._clock() + FLUSH_INTERVAL
        while True:
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                expired = self._pop_expired(now)
                trash: list[str] = []
                if now >= next_flush:
                    trash, self._trash = self._trash, []
                    next_flush = now + FLUSH_INTERVAL
                if not expired and not trash:
                    wake = next_flush
                    if self._deadlines:
                        wake = min(wake, self._deadlines[0][0])
                    self._tick_sleeps_until = wake
                    self._cond.wait(max(0.0, wake - now))
                    self._tick_sleeps_until = None
                    continue
            for handle in expired:
                ticket = handle.ticket
                handle._settle(
                    JobTimeout(
                        f"no response to job {handle.id} ({ticket['type']}) by its deadline",
                        job_id=handle.id,
                        job_type=ticket["type"],
                    ),
                    None,
                )
            if trash:
                self._delete_replies(trash)

    def _compact_deadlines(self) -> None:
        """Drop answered jobs' deadlines once they outnumber the live ones (caller holds the lock).

        Otherwise every job answered in time leaves its deadline behind until it would have
        expired: an hour's timeout at 1,000 jobs/s would keep 3.6 million of them.
        """
        if len(self._deadlines) > 2 * len(self._pending) + 32:
            self._deadlines = [d for d in self._deadlines if d[2] in self._pending]
            heapq.heapify(self._deadlines)

    def _pop_expired(self, now: float) -> list[Handle]:
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, reply_id = heapq.heappop(self._deadlines)
            handle = self._pending.pop(reply_id, None)
            if handle is not None:
                expired.append(handle)
        return expired

    def _delete_replies(self, reply_ids: list[str]) -> None:
        try:
            self.database.update(self.paths.replies(self.id), dict.fromkeys(reply_ids))
        except Exception as exc:
            log.debug("could not delete %d delivered replies yet: %s", len(reply_ids), exc)
            with self._cond:
                self._trash.extend(reply_ids)

    def close(self) -> None:
        """Stop listening, delete this maker's replies and answer pending handles
        (ResponseTimeout: the job did not time out, this caller stopped waiting).

        With the stream and the deadline thread gone nothing else would ever answer them: a
        ``get()`` without a timeout would wait forever and callbacks would never run.
        """
        with self._cond:
            if self._closed:
                return
            outbox = self._outbox
        if outbox is not None:  # queued submissions are written before anything else stops
            atexit.unregister(self._flush_at_exit)
            if not outbox.close(EXIT_FLUSH_TIMEOUT):
                log.error("maker %s: closed with submissions still unwritten", self.id)
        with self._cond:
            if self._closed:
                return
            self._closed = True
            started = self._started
            abandoned, self._pending = list(self._pending.values()), {}
            self._deadlines = []
            self._cond.notify_all()
        if not started:
            return
        for handle in abandoned:
            handle._settle(_closed_error(handle), None)
        self._callbacks.put(_STOP)
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        try:
            self.database.delete(self.paths.replies(self.id))
        except Exception as exc:
            log.debug("could not delete replies of maker %s: %s", self.id, exc)


def wakes_too_late(sleeps_until: float | None, deadline: float) -> bool:
    """Whether the deadline thread must be woken for a new ``deadline`` (pure): only while it
    sleeps, and only if it would wake after the deadline. Waking it at every submission costs
    a thread switch per job; while it runs, it sees the new deadline before it sleeps again.
    """
    return sleeps_until is not None and deadline < sleeps_until


def _too_large(submission: Submission, size: int) -> str:
    ticket = submission.ticket
    return (
        f"job {submission.reply_id} ({ticket['type']}) is {size} bytes encoded, over the "
        f"{MAX_UPDATE_BYTES} bytes one database write may carry; it was not submitted"
    )


def _closed_error(handle: Handle) -> ResponseTimeout:
    ticket = handle.ticket
    return ResponseTimeout(
        f"the app was closed before job {handle.id} ({ticket['type']}) answered; "
        "it may still complete",
        job_id=handle.id,
        job_type=ticket["type"],
    )


def _response(raw: JSON, handle: Handle) -> tuple[JobError | None, JSON]:
    """(error, result) for a raw reply; a malformed reply fails the handle with JobFailed."""
    job_type = handle.ticket["type"]
    try:
        reply = Reply.from_json(raw)
    except InvalidRecord as exc:
        return JobFailed(f"malformed reply: {exc}", job_id=handle.id, job_type=job_type), None
    if reply.ok:
        return None, reply.result
    job_id = reply.job or handle.id
    error = job_error_from_json(reply.error, job_id=job_id, job_type=job_type, result=reply.result)
    return error, reply.result  # callback(error, data) gets both, as done_with gave them
