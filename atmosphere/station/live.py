"""The station's copy of ``{root}/live``, kept current by one stream, and change notification.

The stream's events are applied to an immutable tree (``db._tree``), so a snapshot is just a
reference. Pages wait on ``changed()`` from the event loop; the listener thread wakes them with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from atmosphere.db import _tree
from atmosphere.db.base import Database, Listener
from atmosphere.paths import Paths

from .views import live_snapshot


class HeartbeatClock:
    """When (station clock, ms) each cloud's current heartbeat value was first seen."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, int]] = {}

    def observe(self, clouds: Any, now_ms: int) -> dict[str, int]:
        """Record the heartbeat values in ``clouds`` and return first-seen times per cloud."""
        current = clouds if isinstance(clouds, dict) else {}
        seen: dict[str, tuple[Any, int]] = {}
        for cloud_id, raw in current.items():
            beat = raw.get("heartbeat") if isinstance(raw, dict) else None
            old = self._seen.get(cloud_id)
            seen[cloud_id] = old if old is not None and old[0] == beat else (beat, now_ms)
        self._seen = seen
        return {k: v[1] for k, v in seen.items()}


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
        self._tree: Any = None
        self._version = 0
        self._connected = False
        self._listener: Listener | None = None
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._heartbeats = HeartbeatClock()
        self._snapshot: tuple[int, int, dict[str, Any]] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, wait: float | None = 10.0) -> None:
        """Open the stream; block until the first snapshot arrived (or ``wait`` passed)."""
        self._listener = self._db.listen(
            self._paths.live, self._on_event, on_status=self._on_status
        )
        if wait:
            self._listener.wait_connected(wait)

    def stop(self) -> None:
        """Close the stream and wake every waiter so streaming responses can end."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._notify()

    # -- stream callbacks (listener thread) -------------------------------------------------

    def _on_event(self, kind: str, path: str, data: Any) -> None:
        segs = _tree.split_path(path)
        with self._lock:
            if kind == "put":
                self._tree = _tree.set_in(self._tree, segs, _tree.normalise(data))
            elif kind == "patch" and isinstance(data, dict):
                tree = self._tree
                for key, value in data.items():
                    tree = _tree.set_in(tree, segs + _tree.split_path(key), _tree.normalise(value))
                self._tree = tree
            else:
                return
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

    def tree(self) -> Any:
        """The current ``live/`` value as plain JSON."""
        return _tree.render(self._tree)

    def snapshot(self) -> dict[str, Any]:
        """The live view model (cached per version and second, since ages tick)."""
        now_ms = int(self._clock() * 1000)
        with self._lock:
            cached = self._snapshot
            if cached and cached[0] == self._version and now_ms - cached[1] < 1000:
                return cached[2]
            version, tree, connected = self._version, self._tree, self._connected
            clouds = tree.get("clouds") if isinstance(tree, dict) else None
            first_seen = self._heartbeats.observe(clouds, now_ms)
        snap = live_snapshot(_tree.render(tree), now_ms, self._dead_after, first_seen)
        snap["connected"] = connected
        snap["version"] = version
        with self._lock:
            self._snapshot = (version, now_ms, snap)
        return snap

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
