"""The station's copy of ``{root}/live``, kept current by one stream, and change notification.

A ``db.mirror.Mirror`` applies the stream's events to an immutable tree, so a snapshot is just a
reference. Pages wait on ``changed()`` from the event loop; the listener thread wakes them with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from atmosphere.db.base import Database
from atmosphere.db.mirror import Mirror
from atmosphere.db.tree import get_in, render, split_path
from atmosphere.paths import Paths

from .views import live_snapshot


class HeartbeatClock:
    """When (station clock, seconds) each cloud's heartbeat was last seen to change.

    A heartbeat that changed while the station watched is proof of life whatever the clocks
    say; one only seen in the initial snapshot is judged by its timestamp alone.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, float | None]] = {}

    def observe(self, clouds: Any, now: float) -> dict[str, float]:
        """Record the heartbeat values in ``clouds``; return change times of those that changed."""
        current = clouds if isinstance(clouds, dict) else {}
        seen: dict[str, tuple[Any, float | None]] = {}
        for cloud_id, raw in current.items():
            beat = raw.get("heartbeat") if isinstance(raw, dict) else None
            old = self._seen.get(cloud_id)
            if old is None:
                seen[cloud_id] = (beat, None)
            elif old[0] == beat:
                seen[cloud_id] = old
            else:
                seen[cloud_id] = (beat, now)
        self._seen = seen
        return {k: v[1] for k, v in seen.items() if v[1] is not None}


class LiveState:
    """Mirrors ``live/`` and tells async waiters when it changed."""

    def __init__(
        self,
        database: Database,
        paths: Paths,
        dead_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self._paths = paths
        self._dead_after = dead_after
        self._clock = clock
        self._lock = threading.Lock()
        self._mirror: Mirror | None = None
        self._version = 0
        self._connected = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._heartbeats = HeartbeatClock()
        self._snapshot: tuple[int, float, dict[str, Any]] | None = None
        self._frame: tuple[dict[str, Any], str] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, wait: float | None = 10.0) -> None:
        """Open the stream; block until the first snapshot arrived (or ``wait`` passed)."""
        self._mirror = Mirror(
            self._db, self._paths.live, self._on_change, on_status=self._on_status
        )
        if wait:
            self._mirror.wait_synced(wait)

    def stop(self) -> None:
        """Close the stream and wake every waiter so streaming responses can end."""
        mirror, self._mirror = self._mirror, None
        if mirror is not None:
            mirror.close()
        self._notify()

    # -- stream callbacks (listener thread) -------------------------------------------------

    def _on_change(self, kind: str, path: str, data: Any) -> None:
        with self._lock:
            self._version += 1
        self._notify()

    def _on_status(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected
            self._version += 1
        self._notify()

    # -- readers ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases on every change (and on every stream connect/disconnect)."""
        return self._version

    @property
    def connected(self) -> bool:
        """True while the stream is up."""
        return self._connected

    def _stored(self) -> Any:
        return self._mirror.snapshot() if self._mirror is not None else None

    def get(self, subpath: str) -> Any:
        """A copy of the value at ``subpath`` below ``live/`` (None when absent)."""
        return render(get_in(self._stored(), split_path(subpath)))

    def snapshot(self) -> dict[str, Any]:
        """The live view model (cached per version and second, since ages tick)."""
        now = self._clock()
        with self._lock:
            cached = self._snapshot
            if cached and cached[0] == self._version and now - cached[1] < 1.0:
                return cached[2]
            version, tree, connected = self._version, self._stored(), self._connected
            clouds = tree.get("clouds") if isinstance(tree, dict) else None
            changed_at = self._heartbeats.observe(clouds, now)
        # The stored tree is read in place (never copied): it is immutable, and the view
        # functions only read it, so a frame costs no copy of a large queue.
        snap = live_snapshot(tree, now, self._dead_after, changed_at)
        snap["connected"] = connected
        snap["version"] = version
        with self._lock:
            self._snapshot = (version, now, snap)
            self._frame = None
        return snap

    def snapshot_json(self) -> str:
        """The snapshot serialised once, however many pages are watching."""
        snap = self.snapshot()
        with self._lock:
            if self._frame is None or self._frame[0] is not snap:
                self._frame = (snap, json.dumps(snap, separators=(",", ":")))
            return self._frame[1]

    # -- change notification ---------------------------------------------------------------

    def subscribe(self) -> asyncio.Event:
        """An event set (from any thread) whenever ``live/`` changes; call from the loop."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        """Stop notifying ``event``."""
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    def _notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed; its response is gone
                self.unsubscribe(event)
