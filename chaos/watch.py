"""Watching the database itself: replies per reply id, lease renewals, heartbeats.

The harness's own streams (separate connections from every process under test) count what
was really written, so a duplicate reply the maker would silently drop still shows, and the
renewals and heartbeats of the soak are counted from the wire rather than from anyone's logs.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from atmosphere.db.base import Database, Listener
from atmosphere.db.mirror import apply_event


def _children(tree: Any) -> dict[str, Any]:
    return tree if isinstance(tree, dict) else {}


def new_replies(old: Any, new: Any) -> dict[str, Any]:
    """Replies written (or rewritten) by one event: reply id -> value."""
    before = _children(old)
    return {k: v for k, v in _children(new).items() if v is not None and before.get(k) != v}


def lease_change(old: Any, new: Any) -> str | None:
    """``"election"`` (a new epoch), ``"renewal"`` (a later expiry), ``"other"`` or None."""
    if not isinstance(new, dict) or old == new:
        return None
    if not isinstance(old, dict):
        return "other"
    if new.get("epoch") != old.get("epoch"):
        return "election"
    return "renewal" if new.get("expires") != old.get("expires") else "other"


def beats(old: Any, new: Any) -> int:
    """How many children's ``heartbeat`` changed (or appeared) in one event."""
    before = _children(old)
    n = 0
    for key, record in _children(new).items():
        beat = record.get("heartbeat") if isinstance(record, dict) else None
        prior = before.get(key)
        n += beat is not None and (not isinstance(prior, dict) or prior.get("heartbeat") != beat)
    return n


def held_changes(old: Any, new: Any) -> dict[str, int]:
    """Per cloud, how many more (or fewer, negative) inbox entries it holds after one event."""
    before, after = _children(old), _children(new)
    out = {}
    for cloud in before.keys() | after.keys():
        delta = len(_children(after.get(cloud))) - len(_children(before.get(cloud)))
        if delta:
            out[cloud] = delta
    return out


class _Mirrored:
    """A subtree kept current from one stream; ``changed(old, new)`` runs on every event."""

    def __init__(self, db: Database, path: str) -> None:
        self._tree: Any = None
        self._lock = threading.Lock()
        self._listener: Listener = db.listen(path, self._on_event)

    def _on_event(self, kind: str, path: str, data: Any) -> None:
        with self._lock:
            old, self._tree = self._tree, apply_event(self._tree, kind, path, data)
            self.changed(old, self._tree)

    def changed(self, old: Any, new: Any) -> None:
        """Called with the tree before and after each event (under the lock)."""

    def close(self) -> None:
        """Stop streaming."""
        self._listener.close()


class ReplyWatch(_Mirrored):
    """Distinct payloads written per reply id under ``replies/{maker}``."""

    def __init__(self, db: Database, path: str) -> None:
        self.payloads: dict[str, set[str]] = {}
        super().__init__(db, path)

    def changed(self, old: Any, new: Any) -> None:
        for key, value in new_replies(old, new).items():
            self.payloads.setdefault(key, set()).add(json.dumps(value, sort_keys=True))

    def counts(self) -> dict[str, int]:
        """reply id -> distinct payloads seen."""
        with self._lock:
            return {k: len(v) for k, v in self.payloads.items()}


@dataclass
class LeaseStats:
    """What the lease stream showed."""

    renewals: int = 0
    elections: int = 0  # epoch changes
    max_gap: float = 0.0  # longest time between two changes, on the harness's clock
    max_gap_at: float = 0.0
    lapses: list[float] = field(default_factory=list)  # wall times of gaps over a lease


class LeaseWatch(_Mirrored):
    """Counts renewals (same epoch, later expiry) and elections; measures the gaps between."""

    def __init__(self, db: Database, path: str, lease_seconds: float) -> None:
        self.stats = LeaseStats()
        self._lease_seconds = lease_seconds
        self._last_change: float | None = None
        super().__init__(db, path)

    def changed(self, old: Any, new: Any) -> None:
        change = lease_change(old, new)
        if change is None:
            return
        now = time.monotonic()
        self.stats.elections += change == "election"
        self.stats.renewals += change == "renewal"
        if self._last_change is not None:
            gap = now - self._last_change
            if gap > self.stats.max_gap:
                self.stats.max_gap, self.stats.max_gap_at = gap, time.time()
            if gap > self._lease_seconds:
                self.stats.lapses.append(time.time())
        self._last_change = now

    def snapshot(self) -> LeaseStats:
        """A copy of the counts so far."""
        with self._lock:
            s = self.stats
            return LeaseStats(s.renewals, s.elections, s.max_gap, s.max_gap_at, list(s.lapses))


class HeartbeatWatch(_Mirrored):
    """Counts changes of ``{child}/heartbeat`` under a path (clouds or dispatchers)."""

    def __init__(self, db: Database, path: str) -> None:
        self.beats = 0
        super().__init__(db, path)

    def changed(self, old: Any, new: Any) -> None:
        self.beats += beats(old, new)

    def count(self) -> int:
        """Heartbeats seen so far."""
        with self._lock:
            return self.beats


class InboxWatch(_Mirrored):
    """Slot freed by a completion -> next assignment to that cloud, in seconds (``live/inbox``).

    Seen from outside, this is the dispatcher's round: settle what finished, assign the next.
    """

    def __init__(self, db: Database, path: str) -> None:
        self.latencies: list[float] = []
        self._freed: dict[str, list[float]] = {}
        super().__init__(db, path)

    def changed(self, old: Any, new: Any) -> None:
        now = time.monotonic()
        for cloud, delta in held_changes(old, new).items():
            freed = self._freed.setdefault(cloud, [])
            if delta < 0:
                freed.extend([now] * -delta)
            for _ in range(max(0, delta)):
                if freed:
                    self.latencies.append(now - freed.pop(0))

    def samples(self) -> list[float]:
        """Latencies so far, in the order they happened."""
        with self._lock:
            return list(self.latencies)
