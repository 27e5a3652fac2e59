"""The dispatcher's event loop: stream events in, decisions from the pure modules, batched writes out.

One step at a time, it applies the ``live/`` stream's events (and the dispatcher's own writes,
optimistically) to ``LiveState``, settles outcomes, assigns queued jobs, fires its timers
(delayed jobs, dead clouds, GC, analytics) and flushes ONE multi-path update per step. How
events reach a step, and on which thread, is ``intake.py``'s business; the loop thread sleeps
until the next timer. Leadership (issue 4: lease + epoch) and extra components (periodic
schedules) plug in through ``Leadership`` and ``Component``.
"""

from __future__ import annotations

import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from atmosphere.db.base import Database, Listener
from atmosphere.errors import DatabaseError, PermissionDenied
from atmosphere.jobs import JobSpec, Outcome
from atmosphere.paths import Paths
from atmosphere.scheduler import assigning, housekeeping, moves, poison
from atmosphere.scheduler.analytics import MinuteStats, SubmissionCounter
from atmosphere.scheduler.batcher import WriteBatch
from atmosphere.scheduler.desk import Component, Desk
from atmosphere.scheduler.intake import BARRIER, EVENT, STATUS, Intake, Item
from atmosphere.scheduler.leadership import Leadership, SoleLeader
from atmosphere.scheduler.overlay import Overlay, net, resolve
from atmosphere.scheduler.routing import CloudLoad
from atmosphere.scheduler.settler import Settler, overtaken
from atmosphere.scheduler.state import UNPARSED, Change, LiveState
from atmosphere.scheduler.timers import Timers
from atmosphere.scheduler.watch import QueueWatch
from atmosphere.settings import Settings
from atmosphere.wiretime import to_ms

_log = logging.getLogger(__name__)

_NOT_IN_KEYS = re.compile(r"[.$#\[\]/\x00-\x1f\x7f]")


def new_dispatcher_id() -> str:
    """A fresh dispatcher id, ``host-pid-xxxx``, safe as a database key.

    The random part matters: two containers can share a host name and a pid, and two
    dispatchers with one id would both believe they hold the lease.
    """
    return _NOT_IN_KEYS.sub("-", f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}")


class Dispatcher:
    """Assigns, settles, retries, requeues and collects: the one process every job goes through."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        dispatcher_id: str | None = None,
        leadership: Leadership | None = None,
        components: Iterable[Component] = (),
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        window: float = 0.0,
        settle_delay: float = 0.0,
        stats_interval: float = 2.0,
        gc_interval: float = 60.0,
        gc_batch: int = 500,
        announce: bool = True,
        inline_events: bool = False,
    ) -> None:
        """``inline_events``: step on the stream's thread after each read's events instead of
        queueing them for the loop thread (see intake.py); tests that step by hand leave it off.
        ``window``: how long a queued burst may wait for the rest of it."""
        self.db = db
        self.settings = settings
        self.paths = Paths(settings.root)
        self.id = dispatcher_id or new_dispatcher_id()
        self.leadership: Leadership = leadership or SoleLeader()
        self.watch = QueueWatch()  # says so when the queue does not move (no hot-path cost)
        self.components = [*components, self.watch]
        self.state = LiveState()
        self.batch = WriteBatch()
        self.overlay = Overlay()
        self.stats = MinuteStats()
        self.started = wall()
        self.counts: dict[str, int] = {}  # what happened, for logs, tests and benchmarks
        self.submissions = SubmissionCounter(self.stats, self.started)
        self._wall = wall
        self._mono = monotonic
        self.rand = rand
        self._settle_delay = settle_delay
        self._live_prefix = self.paths.live + "/"
        # Paths of pure bookkeeping: settled outcomes, job records, stats (see _holding_bookkeeping).
        self._lazy_prefixes = tuple(
            p + "/" for p in (self.paths.outcomes(), self.paths.jobs(), self.paths.stats())
        )
        self._lazy_since: float | None = None
        self._stats_interval = stats_interval
        self._gc_interval = gc_interval
        self.gc_batch = gc_batch
        self.announce = announce  # False when an election component keeps live/dispatchers
        self.timers = Timers()
        self.poisoned: dict[str, None] = {}  # jobs whose dead letter was refused: left alone
        self.desk = Desk(
            state=self.state,
            paths=self.paths,
            settings=settings,
            stats=self.stats,
            write=self.write,
            count=self.count,
            now=self.now,
            is_leader=self.leadership.is_leader,
        )
        self.settler = Settler(self.desk, db, self.poisoned, rand)
        self.last_seen: dict[str, float] = {}  # cloud id -> monotonic time of last heartbeat
        self._listener: Listener | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.intake = Intake(
            self._step,
            self._next_look,
            inline=inline_events,
            stopping=self._stopping,
            count=self.count,
            window=window,
            monotonic=monotonic,
        )
        self._suspended = False  # after a failed write, until the stream resyncs
        self._was_acting = False
        # Something the routing reads changed since the last assignment round (see _assign).
        self._replan = True
        self._resync_backoff = 0.25
        self.connected = False

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to ``live/`` and run the loop on a background thread."""
        self.subscribe()
        self._thread = threading.Thread(target=self.run, name="atmosphere-dispatcher", daemon=True)
        self._thread.start()

    def subscribe(self) -> None:
        """Open the one stream on ``live/`` (its first event is the whole snapshot)."""
        self._listener = self.intake.listen(self.db, self.paths.live)
        now = self._mono()
        self._schedule(now, "clouds")
        self._schedule(now + self._stats_interval, "stats")
        self._schedule(now + min(5.0, self._gc_interval), "gc")

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current iteration, flush, withdraw presence and close the stream."""
        self._stopping.set()
        self.intake.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def run(self) -> None:
        """The loop: run iterations until ``stop()``."""
        while not self._stopping.is_set():
            try:
                self.step(self.intake.next_wait())
            except Exception:  # one bad iteration must not end the dispatcher
                _log.exception("dispatcher iteration failed")
                self._stopping.wait(0.1)
        with self.intake.lock:
            self._farewell()

    def sync(self, timeout: float = 5.0) -> bool:
        """Block until the loop has handled everything queued so far (for tests); False on timeout."""
        done = threading.Event()
        self.intake.barrier(done)
        return done.wait(timeout)

    # -- one iteration -----------------------------------------------------------------

    def step(self, wait: float = 0.0) -> None:
        """Handle queued events and due timers, decide, flush once."""
        self.intake.step_queued(wait)

    def _step(self, items: Sequence[Item]) -> None:
        changes: list[Change] = []
        barriers = []
        for item in items:
            tag = item[0]
            if tag == EVENT:
                changes.extend(self._apply_event(item[1], item[2], item[3]))
                # After each event, not once per step: a later event of the same step may delete
                # our record, marker and all (a new leader removing us as silent after a
                # freeze), and a batch never confirmed would be replayed over the truth for good.
                self._confirm_marker()
            elif tag == STATUS:
                self._on_connection(bool(item[1]))
            elif tag == BARRIER:
                barriers.append(item[1])
        self._drop_outlived_overlay()
        hidden: list[Outcome] = []
        arrivals: list[tuple[Outcome, Outcome]] = []
        if changes:
            outcomes = [(c.key[0], c.new) for c in changes if c.section == "outcomes"]
            arrived = [o for _, o in outcomes if o is not None]
            changes.extend(self._replay_overlay())
            # Under our own delete, not yet shown back: a second finish the delete would destroy.
            hidden = [o for o in arrived if self.state.outcome(o.job_id) is None]
            arrivals = overtaken(outcomes, self.state.outcome)
        self._react(net(changes))
        acting = self._acting()
        if acting and not self._was_acting:
            self._take_charge()
        self._was_acting = acting
        self._run_timers()
        if acting:
            self.settler.settle_hidden(hidden)
            self.settler.settle_overtaken(arrivals)
            self.settler.settle_all()
            self._assign()
        self._flush()
        for done in barriers:
            done.set()

    def _apply_event(self, kind: str, path: str, data: Any) -> list[Change]:
        if path in ("", "/") and kind == "put":
            self._suspended = False  # a full snapshot: our view is the truth again
        return self.state.apply(kind, path, data)

    def _acting(self) -> bool:
        return not self._suspended and self.leadership.is_leader()

    def _take_charge(self) -> None:
        """We now lead (or resumed): time every delayed job, as a standby does not."""
        self._replan = True
        now = self._mono()
        for key, spec in self.state.delayed.items():
            self._schedule(now + self._until(spec.eta), "delayed", key[0])

    # -- reacting to changes -----------------------------------------------------------

    def _react(self, changes: Sequence[Change]) -> None:
        if changes:
            self._replan = True
        now = self._mono()
        wall = self.now()  # once, not per change: a job's every move passes here
        replays: list[JobSpec] = []
        for change in changes:
            if change.section in ("queue", "delayed", "inbox") and change.new is not None:
                self.submissions.saw(change.section, change.new, wall)
            if change.section == "clouds":
                old, new = change.old, change.new
                if new is not None and (old is None or old.heartbeat != new.heartbeat):
                    self.last_seen[change.key[0]] = now
            elif change.section == "inbox" and change.new is not None:
                self.settler.remember(change.new)
                self.last_seen.setdefault(change.key[0], now)
            elif change.section == "delayed" and change.new is not None:
                self._schedule(now + self._until(change.new.eta), "delayed", change.key[0])
            elif change.section == "queue" and change.old is None and change.new is not None:
                if self._acting() and self.settler.replayed(change.new):
                    replays.append(change.new)
                else:
                    self.settler.requeued(change.key[1])
        for component in self.components:
            component.changed(changes)
        for spec in replays:  # after the components saw the entry arrive, so they see it go
            self.settler.undo_replay(spec)

    def _until(self, eta: float | None) -> float:
        return 0.0 if eta is None else max(0.0, eta - self.now())

    # -- writing -------------------------------------------------------------------------

    def now(self) -> float:
        """The dispatcher's estimate of server time, in epoch seconds."""
        return self._wall()

    def write(
        self,
        values: dict[str, Any],
        fallback: poison.Fallback | None = None,
        parsed: dict[str, Any] | None = None,
    ) -> None:
        """Queue one decision's writes (full paths); apply ``live/`` ones locally now.

        ``fallback``: what to write instead if the database refuses them (see poison.py).
        ``parsed``: records among them as ``LiveState`` would parse them (full path -> record),
        taken as they are instead of parsing what we just built from them.
        """
        changes = self._apply_write(values, fallback, parsed)
        if changes is not None:
            self._react(changes)

    def _apply_write(
        self,
        values: dict[str, Any],
        fallback: poison.Fallback | None,
        parsed: dict[str, Any] | None,
        now: int | None = None,
    ) -> list[Change] | None:
        """``write`` but for reacting: the changes of our view to react to (None: the writes
        touch nothing in ``live/``). ``now``: ms to resolve server values with (None: read the
        clock if one is needed)."""
        self.batch.update(values, fallback)
        prefix, cut = self._live_prefix, len(self._live_prefix)
        live = False
        changes: list[Change] = []
        for path, value in values.items():
            if not path.startswith(prefix):
                continue
            live = True
            if now is None:
                now = to_ms(self.now())  # our writes' server values, as the server resolves them
            rel = path[cut:]
            resolved = resolve(value, now)
            self.overlay.record(rel, resolved)
            known = parsed.get(path, UNPARSED) if parsed else UNPARSED
            changes.extend(self.state.apply("put", rel, resolved, known))
        return changes if live else None

    def _confirm_marker(self) -> None:
        """Confirm our flushed writes the stream has shown (our marker in our record)."""
        if not self.overlay:
            return
        mine = self.state.raw.get("dispatchers")
        mine = mine.get(self.id) if isinstance(mine, dict) else None
        self.overlay.confirm(mine.get("seq") if isinstance(mine, dict) else None)

    def _drop_outlived_overlay(self) -> None:
        """Deposed (or leading under a new epoch) with writes unconfirmed: forget them and read
        the truth afresh. The new leader removes our record, marker and all, as silent; a stream
        resynced after that never confirms them, and replayed for good they would undo what
        happened since (a finished job's assignment, requeued when its cloud falls silent)."""
        if self.overlay and self.overlay.outlived(
            self.leadership.is_leader(), self.leadership.epoch
        ):
            self.batch.take()  # decided under the old leadership: no longer ours to make
            self._forget_batch()
            self.count("overlay_dropped")
            self._schedule(self._mono(), "resync")

    def _replay_overlay(self) -> list[Change]:
        """Confirm our flushed writes the stream has shown; re-apply the others over it."""
        self._confirm_marker()
        changes: list[Change] = []
        for rel, value in self.overlay.replay():
            changes.extend(self.state.apply("put", rel, value))
        return changes

    def _on_connection(self, up: bool) -> None:
        if up and not self.connected:
            # Heartbeats were invisible while we were away: restart every cloud's count.
            self._replan = True
            now = self._mono()
            for cloud_id in self.last_seen:
                self.last_seen[cloud_id] = now
        self.connected = up

    def _flush(self) -> None:
        if not self.batch or self._holding_bookkeeping():
            return
        if not self.leadership.is_leader():
            # Deposed since deciding: these writes are no longer ours to make.
            self.batch.take()
            self._forget_batch()
            self._schedule(self._mono(), "resync")
            return
        if self.overlay.needs_marker:
            self.batch.set(f"{self.paths.dispatchers(self.id)}/seq", self.overlay.next_marker())
        try:
            refused = self.batch.flush(self.db)
        except DatabaseError as exc:
            # Our optimistic view may now be wrong: stop deciding until a fresh snapshot arrives.
            level = logging.ERROR if isinstance(exc, PermissionDenied) else logging.WARNING
            _log.log(level, "write failed (%s); resyncing from the database", exc)
            self._resync_later()
            return
        if refused:
            # The rest went through; what we assumed about the refused ones is wrong.
            poison.isolate(refused, self.db, self.poisoned, self.count)
            self._resync_later()
            return
        self.overlay.flushed(True, self.leadership.epoch)
        self.settler.flushed(True)
        self._resync_backoff = 0.25

    def _resync_later(self) -> None:
        self._forget_batch()
        self._schedule(self._mono() + self._resync_backoff, "resync")
        self._resync_backoff = min(5.0, self._resync_backoff * 2)

    def _holding_bookkeeping(self) -> bool:
        """Hold a batch of pure bookkeeping (settled outcomes, records, stats) for a moment.

        Writes that move work (queue, inbox, delayed, chains, replies) go out at once; the rest
        waits up to ``settle_delay`` to ride along with them. One-at-a-time RPC then costs three
        writes per job, not four, and the settle write no longer races the next submission.
        """
        if self._settle_delay <= 0 or self._stopping.is_set():
            return False
        if not all(key.startswith(self._lazy_prefixes) for key in self.batch.keys()):
            self._lazy_since = None
            return False
        now = self._mono()
        if self._lazy_since is None:
            self._lazy_since = now
            self._schedule(now + self._settle_delay, "flush")
        if now - self._lazy_since < self._settle_delay:
            return True
        self._lazy_since = None
        return False

    def _forget_batch(self) -> None:
        """The batch was not written: drop what we assumed about it and wait for the truth."""
        self._replan = True
        self.overlay.flushed(False)
        self.overlay.clear()
        self.settler.flushed(False)
        self._suspended = True

    def count(self, what: str, n: int = 1) -> None:
        """Add to one of the ``counts`` (what happened, for logs, tests and benchmarks)."""
        self.counts[what] = self.counts.get(what, 0) + n

    # -- assigning -----------------------------------------------------------------------

    def cloud_loads(self) -> dict[str, CloudLoad]:
        """Every registered cloud as routing sees it right now."""
        return assigning.cloud_loads(
            self.state, self.last_seen, self._mono(), self.settings.dead_after
        )

    def _assign(self) -> None:
        # A round places every job it can, so the next one can place more only after a change
        # of the view: a job queued, an inbox entry gone, a cloud's record, our leadership. A
        # step woken by our own writes shown back (a default cloud's every job) changes
        # nothing, and skips working out the clouds' loads and walking the queues for nothing.
        if not self._replan or not self.state.queue:
            return
        epoch = self.leadership.epoch
        now_ms = to_ms(self.now())
        held = assigning.held_jobs(self.state) | self.poisoned.keys()
        # Reacted to once for the whole round, not per job: the round's plan is worked out
        # from the loads at its start, and what reacting does (the settler keeps each spec,
        # the clouds' clocks, the components) reads none of what the next placement decides on.
        changes: list[Change] = []
        placed = 0
        for spec, cloud_id in assigning.plan(self.state.queue, self.cloud_loads(), held):
            fallback = self._fail_job(spec, "to assign it")
            queued = self.state.raw_record("queue", (spec.type, spec.id))
            assigned, entry = moves.assignment(spec, queued, epoch, now_ms)
            parsed = {self.paths.inbox(cloud_id, spec.id): assigned}
            writes = moves.assign_writes(self.paths, spec, entry, cloud_id)
            changes.extend(self._apply_write(writes, fallback, parsed, now_ms) or ())
            placed += 1
        if placed:
            self.count("assigned", placed)
            self._react(changes)
        self._replan = False  # our own placements (which set it) are in the round's loads

    def _fail_job(self, spec: JobSpec, what: str) -> poison.Fallback:
        """Dead-letter ``spec`` (with its chain as it is now) if the write ``what`` is refused."""
        chain = self.state.chain(spec.chain.id) if spec.chain else None
        return poison.fail_job(self.paths, spec, chain, what)

    # -- timers --------------------------------------------------------------------------

    def _schedule(self, when: float, kind: str, key: str = "") -> None:
        self.timers.add(when, kind, key)

    def _next_look(self) -> float:
        """When (monotonic) the timers and the components next want a step: within 1 s."""
        deadline = min(self.timers.next_due(), self._mono() + 1.0)
        for component in self.components:
            wish = component.tick(self.desk, self._mono())
            if wish is not None:
                deadline = min(deadline, wish)
        return deadline

    def _run_timers(self) -> None:
        now = self._mono()
        for kind, key in self.timers.pop_due(now):
            self._fire(kind, key, now)

    def _fire(self, kind: str, key: str, now: float) -> None:
        if kind == "flush":
            return  # the step that runs this timer flushes held bookkeeping at its end
        if kind == "resync":
            self._resubscribe(now)
            return
        acting = self._acting()
        if kind == "delayed":
            spec = self.state.delayed.get((key,))
            if spec is None or not acting or key in self.poisoned:
                return  # gone, or not ours to move (``_take_charge`` re-times it if we lead)
            if self._until(spec.eta) > 0:
                self._schedule(now + self._until(spec.eta), "delayed", key)
            else:
                fallback = self._fail_job(spec, "to release it")
                self.write(moves.release_writes(self.paths, spec), fallback)
                self.count("released")
        elif kind == "clouds":
            # Blind, we would take every cloud for dead: judge only while the stream is up.
            if acting and self.connected:
                housekeeping.bury_dead_clouds(
                    self.desk, self.last_seen, now, self.settler.dead_letter
                )
            self._schedule(now + min(1.0, self.settings.dead_after / 4), "clouds")
        elif kind == "stats":
            if acting:
                self._write_stats()
            self._schedule(now + self._stats_interval, "stats")
        elif kind == "gc":
            more = housekeeping.collect(self.desk, self.db, self.gc_batch) if acting else False
            self._schedule(now + (1.0 if more else self._gc_interval), "gc")

    def _write_stats(self) -> None:
        housekeeping.write_stats(self.desk)
        if self.announce:
            epoch = self.leadership.epoch
            self.write(housekeeping.presence_writes(self.desk, self.id, self.started, epoch))

    def _resubscribe(self, now: float) -> None:
        self.intake.retire_stream()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        try:
            self._listener = self.intake.listen(self.db, self.paths.live)
        except DatabaseError as exc:
            _log.warning("cannot reopen the live stream (%s); retrying", exc)
            self._schedule(now + self._resync_backoff, "resync")
            self._resync_backoff = min(5.0, self._resync_backoff * 2)

    def _farewell(self) -> None:
        if not self.leadership.is_leader():
            # Deposed with writes still held: the new leader redoes them; ours may be stale.
            self.batch.take()
        try:
            if self._acting():
                self._write_stats()
            if self.announce:
                self.batch.set(self.paths.dispatchers(self.id), None)
            poison.isolate(self.batch.flush(self.db), self.db, self.poisoned, self.count)
        except DatabaseError as exc:
            _log.warning("could not write the last batch: %s", exc)
        _log.info(
            "dispatcher %s made %d updates carrying %d paths; %s",
            self.id,
            self.batch.updates,
            self.batch.paths,
            ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing else",
        )


__all__ = ["Component", "Dispatcher", "Leadership", "SoleLeader"]
