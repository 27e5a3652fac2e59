"""How a cloud writes its completions: through an outbox, and what it does when one fails.

Completions go through an outbox (``outbox.py``): those that finish while a completion write is
in flight share the next write, one multi-path update that carries the cloud's whole record
once (if due: ``Cloud.record_every``); a lone completion is written at once by its own thread. A job's assignment stays in the
inbox, held against the cloud's slots, until its completion is committed (or given up). A write
the database refuses is isolated to its entry and rescued (``_rescue``): an ``InvalidResult``
failure in its place, then the least that frees the job; one that cannot reach the database is
let go, to run again if the inbox still holds it when the stream resyncs.

``CompletionWriting`` is a part of ``Cloud`` (``cloud.py``), kept in a room of its own.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from atmosphere.completion import Verdict, completion_writes
from atmosphere.jobs import Finish, JobSpec
from atmosphere.outbox import Entry, Outbox, merged
from atmosphere.storable import MAX_WRITE_BYTES
from atmosphere.types import JSON
from atmosphere.worker.execution import dropped_writes, refused_finish, transient
from atmosphere.worker.inbox import Inbox
from atmosphere.worker.record import CloudRecord

log = logging.getLogger(__name__)

# How long a completion is retried while the database is unreachable. Past it the cloud lets
# the job go: if its inbox still holds the job when the stream resyncs, it runs again.
COMPLETION_PATIENCE = 300.0
# One update carries at most this many completions and bytes (a larger one goes alone).
COMPLETION_BATCH = 500
COMPLETION_BATCH_BYTES = MAX_WRITE_BYTES // 2
# A cloud never has more completions queued than it holds assignments: this guards memory only.
COMPLETIONS_QUEUED = 10_000


class Completion(NamedTuple):
    """A finished attempt whose completion waits in the outbox to be committed (a tuple: a
    frozen dataclass's ``__init__`` cost a microsecond or two per job)."""

    spec: JobSpec
    finish: Finish
    started: float


class CompletionWriting(CloudRecord):
    """The completion writing of ``Cloud``, which provides the attributes declared here; it
    writes through the record's ``_commit``."""

    patience: float
    _inbox: Inbox
    _handed_back: set[str]
    _pending: int
    _outbox: Outbox[Completion]

    def _completion_outbox(self) -> Outbox[Completion]:
        return Outbox(
            self._write_completions,
            self._completions_failed,
            done=self._completions_written,
            max_jobs=COMPLETION_BATCH,
            max_bytes=COMPLETION_BATCH_BYTES,
            max_queued=COMPLETIONS_QUEUED,
            name=f"cloud-outbox-{self.id}",
        )

    def _send_completion(self, done: Completion, verdict: Verdict, *, inline: bool = True) -> None:
        """Queue the completion (``verdict``: its finish judged); ``inline``: the calling thread
        may write it itself (False: it has a job to run next, which must not wait on the write)."""
        writes = completion_writes(
            self.paths,
            cloud_id=self.id,
            spec=done.spec,
            finish=done.finish,
            started=done.started,
            verdict=verdict,
        )
        entry = Entry(writes, None, done)  # sized by the outbox only if it queues it
        try:
            self._outbox.put(entry, inline=inline)
        except RuntimeError:  # stopped: a handler that outlived the drain completes alone
            self._write_alone(entry)

    def _flush_completions(self, deadline: float) -> None:
        # A few seconds at least: a completion in flight when the grace ran out still lands.
        if not self._outbox.flush(max(deadline - time.monotonic(), 5.0)):
            with self._cond:
                pending = self._pending
            log.warning("cloud %s: %d completion(s) still unwritten", self.name, pending)

    def _write_alone(self, entry: Entry[Completion]) -> None:
        try:
            self._write_completions([entry])
        except Exception as exc:
            self._completions_failed([entry.owner], exc)
        else:
            self._completions_written([entry.owner])

    def _write_completions(self, batch: list[Entry[Completion]]) -> None:
        """The outbox's write: the batch and the record in one update, transport errors retried
        for ``patience`` seconds; a refusal is raised at once, for the outbox to isolate."""
        what = (
            f"completion of job {batch[0].owner.spec.id}"
            if len(batch) == 1
            else f"completion of {len(batch)} jobs"
        )
        error = self._commit(
            lambda: self._reported(batch), what=what, limit=self.patience, record_if_due=True
        )
        if error is not None:
            raise error

    def _reported(self, batch: list[Entry[Completion]]) -> dict[str, JSON]:
        # Decided under the write lock, so a deregistration in flight is seen (it sets
        # ``_handed_back`` under that lock too: no other lock is needed to read it).
        handed_back = self._handed_back
        abandoned = {e.owner.spec.id for e in batch if _abandoned(e.owner, handed_back)}
        for job_id in abandoned:
            log.warning("job %s failed after it was handed back; not reporting it", job_id)
        return merged([e for e in batch if e.owner.spec.id not in abandoned])

    def _completions_written(self, owners: list[Completion]) -> None:
        with self._cond:  # nobody waits on the count: a drain flushes the outbox instead
            self._pending -= len(owners)

    def _completions_failed(self, owners: list[Completion], error: BaseException) -> None:
        for owner in owners:
            try:
                self._rescue(owner, error)
            except Exception:  # the others must still be rescued, and every slot freed
                log.exception("cloud %s: rescuing job %s raised", self.name, owner.spec.id)
        self._completions_written(owners)

    def _rescue(self, done: Completion, error: BaseException | None) -> None:
        """After a completion's write failed: refused, an ``InvalidResult`` failure in its
        place; refused too, the least that frees the job; unreachable, let it go. Never in a
        loop: only transport errors are retried, and only for ``patience`` seconds."""
        spec, started = done.spec, done.started
        deadline = time.monotonic() + self.patience
        if error is not None and not transient(error):
            log.error("job %s (%s): failing it with InvalidResult instead", spec.id, spec.type)
            with self._cond:
                if done.finish.ok:  # counted as done when it finished
                    self._done -= 1
                    self._failed += 1
            instead = refused_finish(error)
            error = self._commit(
                lambda: self._completion(spec, instead, started),
                what=f"InvalidResult failure of job {spec.id}",
                limit=deadline - time.monotonic(),
            )
        if error is not None and not transient(error):
            log.error("job %s (%s): dropping it; its caller will time out", spec.id, spec.type)
            why = f"the database refused every form of this job's completion: {error}"
            error = self._commit(
                lambda: dropped_writes(self.paths, self.id, spec, why),
                what=f"drop of job {spec.id}",
                limit=deadline - time.monotonic(),
                with_record=False,
            )
        if error is not None and transient(error):
            # Let it go: a resync that still finds it in the inbox runs it again (at least once).
            with self._cond:
                self._inbox.let_go(spec.id)
            log.error(
                "cloud %s: job %s's completion was not written (%s); it runs again if the "
                "inbox still holds it when the stream resyncs",
                self.name,
                spec.id,
                error,
            )

    def _completion(self, spec: JobSpec, finish: Finish, started: float) -> dict[str, JSON]:
        # Decided under the write lock, so a deregistration in flight is seen.
        with self._cond:
            abandoned = _abandoned(Completion(spec, finish, started), self._handed_back)
        if abandoned:
            log.warning("job %s failed after it was handed back; not reporting it", spec.id)
            return {}
        return completion_writes(
            self.paths, cloud_id=self.id, spec=spec, finish=finish, started=started
        )


def _abandoned(done: Completion, handed_back: set[str]) -> bool:
    """Whether not to report a completion: a job handed back at shutdown runs again elsewhere,
    so its failure here (most likely the shutdown itself) must not answer for it; a success
    still saves the rerun (pure)."""
    return not done.finish.ok and done.spec.id in handed_back
