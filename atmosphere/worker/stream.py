"""How a cloud reads its inbox stream, and how a default cloud runs its job on that stream's
thread (no hand-off at all).

A default cloud (one slot, no prefetch) runs each job on its inbox stream's thread: nothing
it must see arrives while its one job runs, unless the handler lends its slot (waits on a
sub-job); then the cloud first moves its inbox to a new stream (``_move_inbox_stream``), whose
snapshot comes first, as after a reconnect. Events of a stream moved away from are ignored.

``InboxStream`` is a part of ``Cloud`` (``cloud.py``), kept in a room of its own.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atmosphere.jobs import Finish, JobSpec
from atmosphere.types import JSON
from atmosphere.worker.execution import handback_writes
from atmosphere.worker.inbox import Inbox, inbox_changes

if TYPE_CHECKING:
    from atmosphere.db.base import Database, Listener
    from atmosphere.paths import Paths

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """A running attempt, so done_with from any thread can finish it."""

    spec: JobSpec
    # Made only for a handler that finishes through done_with (an Event costs about 5 us, on
    # the way from the inbox event to the handler's start); set once ``finish`` is.
    event: threading.Event | None = None
    finish: Finish | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    returned: bool = False  # finished by its handler returning or raising, not by done_with
    # Runs on the inbox stream's thread, which reads nothing meanwhile (a default cloud's job).
    on_stream: bool = False


class InboxStream:
    """The inbox stream of ``Cloud``, which provides the attributes declared here."""

    database: Database
    paths: Paths
    id: str
    name: str
    _cond: threading.Condition
    _inbox: Inbox
    _accepting: bool
    _running: int
    _runs_on_stream: bool
    _generation: int
    _stream_busy: int | None
    _listener: Listener | None
    _beat_wake: threading.Event

    if TYPE_CHECKING:

        def _claim_next(self) -> Attempt | None: ...

        def _fill_slots(self) -> None: ...

        def _run(self, attempt: Attempt) -> None: ...

        def _write_once(self, writes: dict[str, JSON]) -> None: ...

    def _listen_inbox(self) -> Listener:
        """A stream on the inbox whose events count while it is the current one (caller holds
        the lock; the listener calls back on its own thread, never from here)."""
        on_event = functools.partial(self._on_inbox, self._generation)
        return self.database.listen(self.paths.inbox(self.id), on_event, on_status=self._on_status)

    def _retire_listener(self, new: bool = False) -> tuple[Listener | None, bool]:
        """Stop counting the inbox stream's events (and start a ``new`` one); the retired
        listener for the caller to close (``close_listener``), and whether its thread runs a
        job (caller holds the lock)."""
        old, busy = self._listener, self._stream_busy == self._generation
        self._generation += 1
        self._listener = self._listen_inbox() if new else None
        return old, busy

    def _on_inbox(self, generation: int, kind: str, path: str, data: JSON) -> None:
        changes = inbox_changes(kind, path, data)
        if changes is None:
            log.warning("ignoring a partial write to inbox entry %s", path)
            return
        entries, full = changes
        with self._cond:
            if generation != self._generation:
                return  # a stream moved away from: the new one's snapshot has it all
            applied = self._inbox.apply(entries, full, self._accepting)
            here = self._claim_on_stream(generation)
            self._fill_slots()
        if applied.garbage:
            inbox = self.paths.inbox
            self._write_once({self.paths.rel(inbox(self.id, j)): None for j in applied.garbage})
        if applied.late:
            self._write_once(handback_writes(self.paths, self.id, applied.late))
        if here is not None:
            self._run_on_stream(here, generation)

    def _claim_on_stream(self, generation: int) -> Attempt | None:
        """A default cloud's job to run on the stream's thread (caller holds the lock): the
        only one running, so the stream has nothing to deliver meanwhile."""
        if not self._runs_on_stream or self._running:
            return None
        attempt = self._claim_next()
        if attempt is not None:
            attempt.on_stream = True
            self._stream_busy = generation
        return attempt

    def _run_on_stream(self, attempt: Attempt, generation: int) -> None:
        """Run ``attempt`` (and what it claims next) on the inbox stream's thread."""
        try:
            self._run(attempt)
        finally:
            with self._cond:
                if self._stream_busy == generation:
                    self._stream_busy = None

    def _move_inbox_stream(self, attempt: Attempt) -> None:
        """Before a handler on the stream's thread lends its slot: the jobs the lent slot
        takes must be seen while it waits, so a new stream reads the inbox (its snapshot
        first, as after a reconnect) and this thread's stream is retired."""
        with self._cond:
            if not attempt.on_stream:
                return
            attempt.on_stream = False
            if not self._accepting:  # a drain starts no stream: the lent slot takes nothing
                return
            retired = self._retire_listener(new=True)
        close_listener(*retired)

    def _on_status(self, connected: bool) -> None:
        if connected:
            log.info("cloud %s: inbox stream connected", self.name)
            self._beat_wake.set()  # re-register at once in case we were declared dead
        else:
            log.warning("cloud %s: inbox stream lost; reconnecting", self.name)


def close_listener(listener: Listener | None, busy: bool) -> None:
    """Close a retired inbox stream. Closing waits for the callback in flight, so one whose
    thread runs a job (``busy``) is closed by a thread of its own: its connection goes at once,
    and the close ends once the job does."""
    if listener is None:
        return
    if busy:
        threading.Thread(target=listener.close, name="cloud-stream-close", daemon=True).start()
    else:
        listener.close()
