"""Settling outcomes inside the dispatcher: first outcome wins, then settlement.py decides the writes."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from atmosphere.db.base import Database
from atmosphere.errors import DatabaseError
from atmosphere.jobs import Finish, InvalidRecord, JobSpec, JobState, Outcome
from atmosphere.scheduler import firsts as first_finishes
from atmosphere.scheduler import poison, settlement
from atmosphere.scheduler.desk import Desk
from atmosphere.scheduler.firsts import Firsts, Settled

_log = logging.getLogger(__name__)

# How many settled job ids to remember for spotting late duplicates.
SETTLED_MEMORY = 100_000


def overtaken(
    arrivals: Iterable[tuple[str, Outcome | None]], current: Callable[[str], Outcome | None]
) -> list[tuple[Outcome, Outcome]]:
    """(first, current) for each job whose outcome, arrived in one batch (``arrivals``: job id
    and outcome, or None for a deletion, in stream order), another run's completion replaced
    on the same path before we looked (pure).

    Each completion writes the record, the reply and the outcome in one PATCH, so the first
    outcome to arrive is the finish whose reply the caller got: it must be settled first, and
    the one the view now shows is then late. One deleted in between was settled already.
    """
    first: dict[str, Outcome] = {}
    for job_id, outcome in arrivals:
        if outcome is None:
            first.pop(job_id, None)
        else:
            first.setdefault(job_id, outcome)
    out = []
    for job_id, outcome in first.items():
        now = current(job_id)
        if now is not None and (now.cloud, now.attempt) != (outcome.cloud, outcome.attempt):
            out.append((outcome, now))
    return out


class Settler:
    """Turns each pending outcome into one settlement, exactly once per attempt."""

    def __init__(
        self, desk: Desk, db: Database, poisoned: dict[str, None], rand: Callable[[], float]
    ) -> None:
        """``db`` is read for the record of a job whose inbox entry is gone; ``poisoned``: the
        jobs set aside (poison.py), left alone; ``rand`` spreads retry backoff."""
        self.d = desk
        self._db = db
        self._poisoned = poisoned
        self._rand = rand
        self.specs: dict[str, JobSpec] = {}  # the last inbox spec seen per job
        self.settled: OrderedDict[str, int] = OrderedDict()  # job id -> settled attempt
        self._unflushed: dict[str, int] = {}  # settled in the batch not yet written
        self.firsts = Firsts()  # the first finish of recent jobs, should one finish twice

    def remember(self, spec: JobSpec) -> None:
        """An inbox entry appeared: keep its spec, the cloud will delete it when done."""
        self.specs[spec.id] = spec

    def requeued(self, job_id: str) -> None:
        """The job is queued again (requeue, retry, operator): its next outcome is new."""
        self.specs.pop(job_id, None)
        self.settled.pop(job_id, None)
        self.firsts.forget(job_id)

    def replayed(self, spec: JobSpec) -> bool:
        """Whether a queue entry that just appeared is a late replay of a job that succeeded."""
        settled = self._unflushed.get(spec.id, self.settled.get(spec.id))
        return self.firsts.replay(spec, settled) is not None

    def undo_replay(self, spec: JobSpec) -> None:
        """Undo a deposed leader's late write that queued ``spec``, a job that succeeded.

        Fencing stops a deposed leader deciding, not a PATCH it sent before it froze: landing
        after ours it queues a chain step again (settling the step before) or assigns a job
        we assigned and settled since (a cloud that saw our epoch hands it back to the queue),
        and rewrites its record. Run again, the job's record would contradict what its caller
        (or the next step, and the chain's reply) got. So: drop the entry, write the first
        finish back, and remove what the same PATCH recreated of a chain we finished
        (``live/chains/{id}/step`` alone, a partial record).
        """
        d = self.d
        first = self.firsts.replay(spec, self._unflushed.get(spec.id, self.settled.get(spec.id)))
        if first is None:
            return
        writes: dict[str, Any] = {d.paths.queue(spec.type, spec.id): None, **first.record}
        if spec.chain is not None and d.state.chain(spec.chain.id) is None:
            writes[d.paths.chains(spec.chain.id)] = None
        _log.warning(
            "job %s (attempt %s) was queued again after it succeeded (a deposed "
            "leader's late write); dropping it and restoring its first finish",
            spec.id,
            spec.attempt,
        )
        d.write(writes)
        d.count("replays_undone")

    def settle_all(self) -> None:
        """Settle every outcome in the view (each is deleted as it settles)."""
        for key, outcome in list(self.d.state.outcomes.items()):
            if key[0] in self._poisoned:
                continue  # the database refused even its dead letter (logged): leave it be
            try:
                self.settle_one(key[0], outcome)
            except Exception:  # a record no rule foresaw must not stall every later outcome
                _log.exception("cannot settle the outcome of job %s; keeping it as late", key[0])
                self.d.count("unsettleable")
                self._write_late(outcome)

    def settle_one(self, job_id: str, outcome: Outcome) -> None:
        """Settle one outcome, or record it as late."""
        spec = self.specs.get(job_id)
        if spec is None:
            spec = self._load_spec(job_id)
        elif spec.deaths > 0 and job_id not in self.settled and not self.firsts.knows(job_id):
            self._recall_first(spec)
        already = self._unflushed.get(job_id, self.settled.get(job_id))
        if (
            spec is None
            or (already is not None and outcome.attempt <= already)
            or outcome.attempt < spec.attempt
        ):
            if spec is None or not self._adopt(spec, outcome):
                self._late(outcome)
            return
        self._settle(spec, outcome)

    def _adopt(self, spec: JobSpec, outcome: Outcome) -> bool:
        """End the job with ``outcome``, a late final one that answered its caller, if a later
        attempt of it still waits or runs; False when none does (then it is plainly late).

        A frozen cloud's run of attempt k that wakes after the rerun of k failed and was
        retried writes the first reply the caller sees: that is the job's answer. So the
        record keeps it (as its first finish), the attempt waiting is dropped, and one already
        running finishes late, its record write restored over.
        """
        if not (outcome.final and outcome.replied) or spec.chain is not None:
            return False
        later = self._later_attempt(spec, outcome.attempt)
        if later is None:
            return False
        d = self.d
        job = d.paths.jobs(spec.id)
        this = later.evolve(attempt=outcome.attempt, assigned=None, epoch=None, eta=None)
        state = JobState.SUCCEEDED if outcome.ok else JobState.FAILED
        first = Settled(d.paths, this, outcome, state, d.now())
        writes: dict[str, Any] = {
            **first.first().record,
            f"{job}/attempt": outcome.attempt,
            f"{job}/eta": None,
            d.paths.outcomes(spec.id): None,
            d.paths.queue(spec.type, spec.id): None,
            d.paths.delayed(spec.id): None,
        }
        if this.deaths > 0:
            writes[f"{job}/{first_finishes.FIELD}"] = first_finishes.persisted(first)
        _log.warning(
            "job %s: attempt %s, run by a cloud declared dead, answered its caller after the "
            "attempt was retried; that answer ends the job (attempt %s is dropped, or late)",
            spec.id,
            outcome.attempt,
            later.attempt,
        )
        d.write(writes, poison.drop_outcome(d.paths, spec.id))
        d.count("adopted")
        self.specs.pop(spec.id, None)
        self.firsts.keep(first)
        self._unflushed[spec.id] = later.attempt  # the attempt running anyway is late
        return True

    def _later_attempt(self, spec: JobSpec, attempt: int) -> JobSpec | None:
        """The job's entry in the queue, the delayed set or an inbox with an attempt after
        ``attempt`` (a retry waiting or running), else None."""
        state = self.d.state
        queued = state.queue.get(spec.type)
        found = [
            state.delayed.get((spec.id,)),
            queued.get(spec.id) if queued is not None else None,
            *(jobs.get(spec.id) for jobs in state.inbox.values()),
        ]
        return next((s for s in found if s is not None and s.attempt > attempt), None)

    def settle_hidden(self, outcomes: list[Outcome]) -> None:
        """Outcomes that landed on a path our delete (in flight) clears: keep the second finishes.

        A frozen cloud's completion arriving just after the rerun's (or the other way round)
        overwrites the same outcome path before our settling delete reaches the database.
        """
        for outcome in outcomes:
            if self.firsts.second(outcome):
                self._late(outcome)

    def settle_overtaken(self, pairs: list[tuple[Outcome, Outcome]]) -> None:
        """Settle each ``overtaken`` first outcome before the one that replaced it, which is then
        late (its record write restored) or, when the first was late itself, late as well."""
        for first, current in pairs:
            self.settle_one(first.job_id, first)
            self.settle_one(current.job_id, current)

    def dead_letter(self, spec: JobSpec, error: dict[str, Any], cloud_id: str) -> None:
        """Fail a job the dispatcher gives up on itself (its clouds kept dying while running it)."""
        outcome = Outcome.of(spec, Finish(ok=False, error=error), cloud=cloud_id)
        self._settle(spec, outcome, written=False)

    def _late(self, outcome: Outcome) -> None:
        d = self.d
        d.count("late")
        self._write_late(outcome)
        # Its completion wrote the record over the first finish: put the first one back.
        restore = self.firsts.restore(outcome)
        if restore:
            d.write(restore)
            d.count("restored")

    def _settle(self, spec: JobSpec, outcome: Outcome, *, written: bool = True) -> None:
        """Settle the first outcome of ``spec``'s attempt (``written``: a cloud wrote it)."""
        d = self.d
        now = d.now()
        job_id = spec.id
        chain = d.state.chain(spec.chain.id) if spec.chain else None
        result = settlement.settle(d.paths, spec, outcome, chain, now, rand=self._rand)
        if result.kind == "late":
            self.specs.pop(job_id, None)  # a step the chain has moved past never runs again
            if written:
                self._late(outcome)
            return
        if not written:
            # No outcome to delete; one that lands meanwhile (a frozen cloud woke) stays to be
            # recorded as late.
            result.writes.pop(d.paths.outcomes(job_id), None)
        copy = d.paths.queue(spec.type, job_id)
        if copy not in result.writes and d.state.in_queue(spec):
            # A requeued copy is waiting: the job is done, or its next attempt is delayed or
            # queued by this settlement, so the copy need not run.
            result.writes[copy] = None
        final = None
        if result.kind != "retried":
            state = JobState.SUCCEEDED if result.kind == "succeeded" else JobState.FAILED
            final = Settled(d.paths, spec, outcome, state, now)
            if spec.deaths > 0:  # for a leader after us, should the other run finish later
                field = f"{d.paths.jobs(job_id)}/{first_finishes.FIELD}"
                result.writes[field] = first_finishes.persisted(final)
        refused = poison.fail_job(
            d.paths, spec, chain, "to settle its outcome", replied=outcome.replied
        )
        d.write(result.writes, refused)
        d.count(result.kind)
        self._record_stats(spec, outcome, result.kind, now)
        if result.error is not None:
            unheard = settlement.unheard_failure(spec, chain, result.error)
            if unheard is not None:
                _log.warning("%s", unheard)
        if final is not None:
            self.specs.pop(job_id, None)
            self.firsts.keep(final)
        self._unflushed[job_id] = outcome.attempt

    def _write_late(self, outcome: Outcome) -> None:
        d = self.d
        d.write(
            settlement.late_writes(d.paths, outcome), poison.drop_outcome(d.paths, outcome.job_id)
        )

    def flushed(self, ok: bool) -> None:
        """The batch holding this iteration's settlements was written (or was not: forget them)."""
        if ok:
            for job_id, attempt in self._unflushed.items():
                self.settled[job_id] = attempt
                self.settled.move_to_end(job_id)
            while len(self.settled) > SETTLED_MEMORY:
                self.settled.popitem(last=False)
        self._unflushed = {}

    def _load_spec(self, job_id: str) -> JobSpec | None:
        """After a restart the inbox entry of a finished job is gone: read its record instead
        (and the first finish it keeps, if another leader settled one)."""
        d = self.d
        try:
            record = self._db.get(d.paths.jobs(job_id))
        except DatabaseError as exc:
            _log.warning("cannot read job %s to settle its outcome: %s", job_id, exc)
            return None
        try:
            spec = JobSpec.from_json(record, job_id=job_id)
        except InvalidRecord as exc:
            _log.warning("job %s has no usable record (%s); dropping its outcome", job_id, exc)
            return None
        if isinstance(record, dict):
            self._learn(first_finishes.recalled(d.paths, spec, record.get(first_finishes.FIELD)))
        # Not cached: a late outcome would leave it here for good (specs only shrink on settling
        # or requeueing), and the job's next attempt shows its spec in the inbox anyway.
        return spec

    def _recall_first(self, spec: JobSpec) -> None:
        """A job that lost a cloud, seen in an inbox but not settled by us: a leader before us
        may have settled its first finish (kept in the record) while we stood by."""
        d = self.d
        try:
            raw = self._db.get(f"{d.paths.jobs(spec.id)}/{first_finishes.FIELD}")
        except DatabaseError as exc:
            _log.warning(
                "cannot read job %s's first finish (%s); settling this outcome as the first",
                spec.id,
                exc,
            )
            return
        self._learn(first_finishes.recalled(d.paths, spec, raw))

    def _learn(self, first: Settled | None) -> None:
        """Keep a first finish another leader settled, as if we had settled it."""
        if first is None:
            return
        job_id = first.spec.id
        self.firsts.keep(first)
        if self.firsts.knows(job_id) and job_id not in self.settled:
            self.settled[job_id] = first.outcome.attempt

    def _record_stats(self, spec: JobSpec, outcome: Outcome, kind: str, now: float) -> None:
        stats = self.d.stats
        at = outcome.finished or now
        if kind in ("succeeded", "failed", "retried"):
            stats.count(at, spec.type, kind)
        if kind in ("succeeded", "failed") and spec.submitted and outcome.finished:
            latency = outcome.finished - spec.submitted
            stats.latency(at, spec.type, latency)
            if spec.reply_to and latency > spec.timeout:
                stats.count(at, spec.type, "timed_out")
