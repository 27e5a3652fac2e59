"""What a cloud knows about its inbox: each assignment is waiting, running, finished or handed
back, and stream events move it along (pure; the cloud's lock guards an ``Inbox``).

Events arrive in commit order, so an entry is forgotten only when its removal is seen: an
assignment that the cloud finished but still sees in an older snapshot is never run twice, and
the same job id assigned again later (a retry, a requeue) is a new assignment, told apart by
its attempt, deaths, assignment time and epoch even when the old one's removal went unseen.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from atmosphere.jobs import InvalidRecord, JobSpec, epoch_admissible
from atmosphere.types import JSON

log = logging.getLogger(__name__)

WAITING, RUNNING, FINISHED, HANDED_BACK = "waiting", "running", "finished", "handed back"


@dataclass
class _Entry:
    spec: JobSpec
    status: str = WAITING
    taken: bool = False  # its removal was seen while it ran: no later event will forget it


@dataclass
class Applied:
    """What an event asks the cloud to write: garbage to remove, late jobs to hand back."""

    garbage: list[str] = field(default_factory=list)
    late: list[JobSpec] = field(default_factory=list)


class Inbox:
    """The assignments a cloud knows about, and which wait for a slot (oldest first)."""

    def __init__(self) -> None:
        self._known: dict[str, _Entry] = {}
        self._waiting: deque[str] = deque()
        self.highest_epoch: int | None = None  # of the assignments seen: fencing

    @property
    def waiting(self) -> int:
        """How many assignments wait for a slot."""
        return len(self._waiting)

    def apply(self, entries: dict[str, JSON], full: bool, accepting: bool) -> Applied:
        """Take in one event's entries (``full``: the whole inbox, from a put at its root)."""
        applied = Applied()
        if full:
            for job_id in [j for j in self._known if entries.get(j) is None]:
                self._forget(job_id)
        for job_id, raw in entries.items():
            if raw is None:
                self._forget(job_id)
                continue
            known = self._known.get(job_id)
            if known is not None and known.status in (WAITING, RUNNING):
                known.taken = False  # present again: its removal will be seen
                continue
            try:
                spec = JobSpec.from_json(raw, job_id)
            except InvalidRecord as exc:
                log.error("removing garbage assignment %s: %s", job_id, exc)
                applied.garbage.append(job_id)
                continue
            if known is not None and _same_assignment(known.spec, spec):
                known.taken = False  # a finished (or handed back) one seen again: not rerun
                continue
            if accepting and not self._fenced(spec):
                self._known[job_id] = _Entry(spec)
                self._waiting.append(job_id)
            else:
                self._known[job_id] = _Entry(spec, HANDED_BACK)
                applied.late.append(spec)
        return applied

    def _fenced(self, spec: JobSpec) -> bool:
        """True for an assignment a deposed leader made (an epoch below one already seen)."""
        if not epoch_admissible(spec.epoch, self.highest_epoch):
            log.warning(
                "handing back job %s: assigned by a deposed leader (epoch %s < %s)",
                spec.id,
                spec.epoch,
                self.highest_epoch,
            )
            return True
        if spec.epoch is not None:
            self.highest_epoch = spec.epoch
        return False

    def start_next(self) -> JobSpec | None:
        """The oldest waiting assignment, now marked running (None when none waits)."""
        if not self._waiting:
            return None
        entry = self._known[self._waiting.popleft()]
        entry.status = RUNNING
        return entry.spec

    def finish(self, job_id: str) -> None:
        """The job's completion is being written; forget it once its removal is seen."""
        entry = self._known.get(job_id)
        if entry is None:
            return
        if entry.taken:
            # Otherwise it would stay known forever, and the job, assigned here again after
            # another cloud died with it, would sit ignored in this inbox holding a slot.
            del self._known[job_id]
        else:
            entry.status = FINISHED

    def let_go(self, job_id: str) -> None:
        """Forget a finished job whose completion could not be written: an event that still
        holds it (the snapshot after the stream resyncs) is then a new assignment, run again."""
        self._known.pop(job_id, None)

    def hand_back_waiting(self) -> list[JobSpec]:
        """Every waiting assignment, now marked handed back (the cloud is draining)."""
        specs = []
        while self._waiting:
            entry = self._known[self._waiting.popleft()]
            entry.status = HANDED_BACK
            specs.append(entry.spec)
        return specs

    def status(self, job_id: str) -> str | None:
        """Where an assignment is (None: unknown)."""
        entry = self._known.get(job_id)
        return entry.status if entry is not None else None

    def _forget(self, job_id: str) -> None:
        entry = self._known.get(job_id)
        if entry is None:
            return
        if entry.status == RUNNING:
            log.warning(
                "job %s was taken from this cloud while running; it still completes", job_id
            )
            entry.taken = True
            return
        if entry.status == WAITING:
            self._waiting.remove(job_id)
            log.info("job %s was taken back before it started", job_id)
        del self._known[job_id]


def _same_assignment(old: JobSpec, new: JobSpec) -> bool:
    """False when ``new`` is the job assigned here again (a retry, a requeue), not ``old``.

    The removal of an assignment the cloud is done with can go unseen: a stream resynced after
    the job was retried and assigned here again shows only the new entry. Taken for the old one,
    it would sit in the inbox for good, holding the job (the chaos run's lost recursion job).
    """
    return (old.attempt, old.deaths, old.assigned, old.epoch) == (
        new.attempt,
        new.deaths,
        new.assigned,
        new.epoch,
    )


def inbox_changes(kind: str, path: str, data: JSON) -> tuple[dict[str, JSON], bool] | None:
    """Inbox entries an event touches, and whether it is the whole inbox (a put at "/").

    None for a write below an entry (an assignment is written whole, so it is not expected).
    """
    if path == "/":
        entries = dict(data) if isinstance(data, dict) else {}
        return entries, kind == "put"
    parts = path.strip("/").split("/")
    if len(parts) != 1:
        return None
    return {parts[0]: data}, False
