"""Leader election among dispatchers: keeps or waits for the lease, and announces presence.

One background thread renews the lease while leading (deposing itself when it cannot renew in
time) or, while standing by, takes the lease over once it has not changed for a whole lease
period on this process's own clock. A stream on ``live/lease`` tells standbys of every change
at once (a released lease is taken immediately) and tells a leader when it was superseded.

Each dispatcher also keeps ``live/dispatchers/{id}`` = {host, pid, started, heartbeat, role}
fresh; its own heartbeat, read back, gives the offset between this clock and the server's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP, Database, Listener
from atmosphere.db.mirror import apply_event
from atmosphere.db.tree import render
from atmosphere.errors import DatabaseError
from atmosphere.jobs import InvalidRecord
from atmosphere.paths import Paths
from atmosphere.presence import DispatcherInfo

from .lease import Lease, claim, holds, release, renew_interval, takeover_due, valid_for

_log = logging.getLogger(__name__)

EpochCallback = Callable[[int], None]
# A dispatcher silent for this many heartbeats is dropped from live/dispatchers by the leader.
_PRESENCE_STALE_BEATS = 5
# While the lease cannot be written, say so at ERROR this often (seconds): loud, not a flood.
LEASE_TROUBLE_EVERY = 5.0


class Election:
    """Campaign for the lease at ``paths.lease``; ``fence()`` says whether we may write now."""

    def __init__(
        self,
        db: Database,
        paths: Paths,
        *,
        me: str,
        lease_seconds: float,
        heartbeat_interval: float = 2.0,
        on_elected: EpochCallback | None = None,
        on_deposed: EpochCallback | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.paths = paths
        self.me = me
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._clock = clock
        self._mono = monotonic
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        self._lease_tree: Any = None  # the raw lease, kept by the stream
        self._elected = threading.Condition(self._lock)
        # lease as last seen on the stream, and when (monotonic) it last changed
        self._seen: Lease | None = None
        self._seen_at = monotonic()
        self._max_epoch = 0
        # leadership: the epoch we hold, and until when (monotonic) we may act on it
        self._epoch: int | None = None
        self._valid_until = 0.0
        self._last_epoch = 0
        self._announced: int | None = None  # the epoch on_elected was last called for
        self._next_renew = 0.0
        self._next_presence = 0.0
        self.offset = 0.0  # server clock minus ours (seconds), from presence heartbeats
        self.elections = 0  # how many times this process became leader
        self.lease_failures = 0  # lease writes failed in a row (campaigns and renewals)
        self._trouble_said_at: float | None = None

    # -- public ------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching the lease and campaigning."""
        self._announce("standby", first=True)
        self._listener = self.db.listen(self.paths.lease, self._lease_event)
        self._thread = threading.Thread(target=self._run, name="election", daemon=True)
        self._thread.start()

    def stop(self, *, hand_over: bool = True) -> None:
        """Stop campaigning; a leader releases the lease so a standby takes over at once."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.lease_seconds * 2))
        with self._lock:
            was = self._epoch
            self._epoch = None
            self._valid_until = 0.0
        if hand_over and was is not None:
            self._release()
        if self._listener is not None:
            self._listener.close()
        try:
            self.db.delete(self.paths.dispatchers(self.me))
        except DatabaseError as exc:
            _log.warning("could not remove dispatcher presence: %s", exc)

    def fence(self) -> int | None:
        """The epoch to stamp on writes while we lead, or None: do not write."""
        with self._lock:
            if self._epoch is not None and self._mono() < self._valid_until:
                return self._epoch
            return None

    def is_leader(self) -> bool:
        """True while we hold a lease we renewed recently enough to act on."""
        return self.fence() is not None

    @property
    def epoch(self) -> int:
        """The epoch we lead (or last led) with, stamped on assignments; 0 before any."""
        with self._lock:
            return self._last_epoch

    @property
    def lease(self) -> Lease | None:
        """The lease as last seen on the stream."""
        with self._lock:
            return self._seen

    def wait_leader(self, timeout: float | None = None) -> bool:
        """Block until this process leads; False on timeout."""
        deadline = None if timeout is None else self._mono() + timeout
        while not self.is_leader():
            left = None if deadline is None else deadline - self._mono()
            if left is not None and left <= 0:
                return False
            with self._elected:
                self._elected.wait(0.05 if left is None else min(0.05, left))
        return True

    def server_time(self) -> float:
        """Our best estimate of the server's clock, in seconds."""
        return self._clock() + self.offset

    # -- the campaign thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:  # the campaign must outlive any one failure
                _log.exception("election step failed")
                self._wake.wait(min(1.0, self.lease_seconds / 3))
            with self._lock:
                wait = self._next_wait()
            self._wake.wait(max(0.0, wait))
            self._wake.clear()

    def _step(self) -> None:
        now = self._mono()
        with self._lock:
            leading = self._epoch is not None
            seen, seen_for = self._seen, now - self._seen_at
            lost = leading and now >= self._valid_until
        if lost:
            self._depose("could not renew the lease in time")
            leading = False
        if leading and now >= self._next_renew:
            self._renew()
        elif not leading and takeover_due(seen, seen_for, self.lease_seconds):
            self._campaign(seen if seen is not None and not seen.released else None)
        self._deliver_callbacks()
        if self._mono() >= self._next_presence:
            self._heartbeat()

    def _next_wait(self) -> float:
        now = self._mono()
        wakes = [self._next_presence]
        if self._epoch is not None:
            wakes += [self._next_renew, self._valid_until]
        else:
            wakes.append(self._seen_at + self.lease_seconds)
            wakes.append(now + renew_interval(self.lease_seconds))  # re-check after failures
        return min(wakes) - now

    def _campaign(self, stale: Lease | None) -> None:
        started = self._mono()
        try:
            result = self._transact(stale)
        except DatabaseError as exc:
            self._lease_trouble("cannot take", exc)
            return
        self._lease_written()
        if result is not None and result.owner == self.me:
            self._lead(result.epoch, started)
        else:
            # lost the race, or the lease changed under us: wait a full period from now
            with self._lock:
                if result is not None and result != self._seen:
                    self._remember(result, started)

    def _renew(self) -> None:
        started = self._mono()
        with self._lock:
            epoch = self._epoch
        try:
            result = self._transact(None)
        except DatabaseError as exc:
            self._lease_trouble("cannot renew", exc)
            with self._lock:
                self._next_renew = self._mono() + renew_interval(self.lease_seconds) / 2
            return
        self._lease_written()
        if epoch is not None and holds(result, me=self.me, epoch=epoch):
            with self._lock:
                if self._epoch == epoch:
                    self._valid_until = valid_for(started, self.lease_seconds)
                    self._next_renew = started + renew_interval(self.lease_seconds)
        else:
            self._depose(f"the lease is now {result}")

    def _transact(self, stale: Lease | None) -> Lease | None:
        now = self.server_time()
        with self._lock:
            min_epoch = self._max_epoch

        def fn(raw: Any) -> Any:
            new = claim(
                Lease.from_json(raw),
                me=self.me,
                now=now,
                lease_seconds=self.lease_seconds,
                stale=stale,
                min_epoch=min_epoch,
            )
            return new.to_json() if new is not None else raw

        return Lease.from_json(self.db.transaction(self.paths.lease, fn))

    def _lease_trouble(self, action: str, exc: DatabaseError) -> None:
        """A failed lease write: WARNING once, then ERROR every few seconds while it lasts."""
        self.lease_failures += 1
        now = self._mono()
        if self.lease_failures == 1:
            _log.warning("dispatcher %s %s the lease: %s", self.me, action, exc)
            return
        if self._trouble_said_at is not None and now - self._trouble_said_at < LEASE_TROUBLE_EVERY:
            return
        self._trouble_said_at = now
        _log.error(
            "dispatcher %s %s the lease at %r (%d failures in a row): %s; "
            "no job is dispatched while no dispatcher can hold the lease",
            self.me,
            action,
            self.paths.lease,
            self.lease_failures,
            exc,
        )

    def _lease_written(self) -> None:
        if self.lease_failures > 1:
            _log.warning(
                "dispatcher %s can write the lease again (after %d failures)",
                self.me,
                self.lease_failures,
            )
        self.lease_failures = 0
        self._trouble_said_at = None

    def _lead(self, epoch: int, started: float) -> None:
        with self._lock:
            self._epoch = self._last_epoch = epoch
            self._max_epoch = max(self._max_epoch, epoch)
            self._valid_until = valid_for(started, self.lease_seconds)
            self._next_renew = started + renew_interval(self.lease_seconds)
            self._next_presence = 0.0  # announce the new role at once
        _log.info("dispatcher %s leads with epoch %d", self.me, epoch)

    def _depose(self, why: str) -> None:
        with self._lock:
            if self._epoch is None:
                return
            epoch, self._epoch, self._valid_until = self._epoch, None, 0.0
            self._next_presence = 0.0
        _log.warning("dispatcher %s no longer leads (epoch %d): %s", self.me, epoch, why)

    def _deliver_callbacks(self) -> None:
        # Callbacks run only on this thread, in order: elected(e) before deposed(e).
        with self._lock:
            epoch, announced = self._epoch, self._announced
            self._announced = epoch
            if epoch is not None:
                self.elections += epoch != announced
                self._elected.notify_all()
        if announced is not None and announced != epoch and self._on_deposed is not None:
            self._on_deposed(announced)
        if epoch is not None and epoch != announced and self._on_elected is not None:
            self._on_elected(epoch)

    def _release(self) -> None:
        def fn(raw: Any) -> Any:
            new = release(Lease.from_json(raw), me=self.me)
            return new.to_json() if new is not None else raw

        try:
            self.db.transaction(self.paths.lease, fn)
            _log.info("dispatcher %s handed the lease over", self.me)
        except DatabaseError as exc:
            _log.warning(
                "could not release the lease (a standby takes over when it lapses): %s", exc
            )

    # -- the lease stream --------------------------------------------------------------

    def _lease_event(self, kind: str, path: str, data: Any) -> None:
        superseded = False
        with self._lock:
            self._lease_tree = apply_event(self._lease_tree, kind, path, data)
            lease = Lease.from_json(render(self._lease_tree))
            if lease != self._seen:
                self._remember(lease, self._mono())
            if self._epoch is not None and not holds(lease, me=self.me, epoch=self._epoch):
                superseded = lease is not None and (
                    lease.owner != self.me or lease.epoch > self._epoch
                )
                if superseded:
                    self._valid_until = 0.0  # fence at once; the thread delivers on_deposed
        if superseded or lease is None or lease.released:
            self._wake.set()

    def _remember(self, lease: Lease | None, at: float) -> None:
        self._seen, self._seen_at = lease, at
        if lease is not None:
            self._max_epoch = max(self._max_epoch, lease.epoch)

    # -- presence ----------------------------------------------------------------------

    def _announce(self, role: str, *, first: bool = False) -> None:
        # host and pid every time: a record pruned during a long pause comes back whole
        info = DispatcherInfo(self.me, socket.gethostname(), os.getpid(), role)
        record: dict[str, Any] = {**info.to_json(), "heartbeat": SERVER_TIMESTAMP}
        if first:
            record["started"] = SERVER_TIMESTAMP
        sent = self._clock()
        self.db.update(self.paths.dispatchers(self.me), record)
        everyone = self.db.get(self.paths.dispatchers())
        back = self._clock()
        mine = _presence(everyone, self.me)
        if mine is not None and mine.heartbeat is not None:
            self.offset = mine.heartbeat - (sent + back) / 2
        if role == "leader" and isinstance(everyone, dict):
            self._prune_presence(everyone)

    def _heartbeat(self) -> None:
        with self._lock:
            self._next_presence = self._mono() + self.heartbeat_interval
        role = "leader" if self.is_leader() else "standby"
        try:
            self._announce(role)
        except DatabaseError as exc:
            _log.warning("dispatcher heartbeat failed: %s", exc)

    def _prune_presence(self, everyone: dict[str, Any]) -> None:
        # Drop the silent, and any other "leader": it is gone (killed) or deposed, and a
        # deposed one that lives re-announces itself as a standby at its next heartbeat.
        limit = self.server_time() - _PRESENCE_STALE_BEATS * self.heartbeat_interval
        stale: dict[str, Any] = {}
        for key in everyone:
            info = _presence(everyone, key)
            fresh = info is not None and (info.heartbeat or 0.0) > limit and not info.leader
            if key != self.me and not fresh:
                stale[key] = None
        if stale:
            self.db.update(self.paths.dispatchers(), stale)


def _presence(everyone: Any, dispatcher_id: str) -> DispatcherInfo | None:
    """``dispatcher_id``'s presence record in ``live/dispatchers``, None if absent or garbled."""
    try:
        raw = everyone.get(dispatcher_id) if isinstance(everyone, dict) else None
        return DispatcherInfo.from_json(raw, dispatcher_id)
    except InvalidRecord:
        return None
