"""Running the dispatcher as a process: connect, start, serve the station, stop cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from atmosphere.db.base import Database
from atmosphere.errors import AtmosphereError
from atmosphere.paths import Paths
from atmosphere.scheduler.desk import Component
from atmosphere.scheduler.dispatcher import Dispatcher, new_dispatcher_id
from atmosphere.scheduler.leadership.election import Election
from atmosphere.scheduler.periodic import PeriodicComponent
from atmosphere.settings import Settings

_log = logging.getLogger(__name__)


# Starts the Weather Station on the dispatcher's database; returns a handle with ``.url`` and
# ``.stop()``. The CLI passes it in: the dispatcher package never imports the station.
StartStation = Callable[[Database], Any]


def start_station(start: StartStation, db: Database) -> Any:
    """Serve the Weather Station; None (with a log line) when it cannot start."""
    try:
        handle = start(db)
    except (AtmosphereError, OSError) as exc:
        _log.warning("the Weather Station did not start (%s); the dispatcher runs without it", exc)
        return None
    _log.info("Weather Station at %s", getattr(handle, "url", "?"))
    return handle


class HighAvailability:
    """The election and the periodic component of one dispatcher process.

    Several ``atmosphere dispatcher`` processes may run: the election is the dispatcher's
    ``leadership`` and the periodic component one of its ``components``. Start it after the
    dispatcher and stop it after the dispatcher, so a clean shutdown flushes the last batch and
    *then* hands the lease over.
    """

    def __init__(self, db: Database, settings: Settings, me: str | None = None) -> None:
        self.id = me or new_dispatcher_id()
        self._wake: Callable[[], object] | None = None
        self.election = Election(
            db,
            Paths(settings.root),
            me=self.id,
            lease_seconds=settings.lease_seconds,
            heartbeat_interval=settings.heartbeat_interval,
            on_elected=self._elected,
        )
        self.periodic = PeriodicComponent(
            Paths(settings.root), default_timeout=settings.default_timeout
        )

    @property
    def components(self) -> list[Component]:
        """The dispatcher components this adds."""
        return [self.periodic]

    def start(self, wake: Callable[[], object]) -> None:
        """Begin campaigning for a dispatcher (already started); ``wake`` runs its loop now."""
        self._wake = wake
        self.election.start()

    def stop(self) -> None:
        """Hand the lease over at once (call after the dispatcher stopped acting)."""
        self.election.stop(hand_over=True)

    def _elected(self, epoch: int) -> None:
        # Wake the dispatcher's loop so the new leader acts now, not at its next timer.
        if self._wake is not None:
            self._wake()


# Bookkeeping-only writes wait this long for work writes to ride along with (dispatcher.py).
SETTLE_DELAY = 0.05


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    station: StartStation | None = None,
    ready: threading.Event | None = None,
) -> Dispatcher:
    """Run a dispatcher until ``stop`` is set; start the embedded database if none is configured,
    and the Weather Station when ``station`` is given."""
    from atmosphere.db.connect import connect

    db = connect(settings, start_embedded=settings.uses_embedded, wait=10.0)
    ha = HighAvailability(db, settings)  # leader lease + periodic schedules (issue 4)
    dispatcher = Dispatcher(
        db,
        settings,
        dispatcher_id=ha.id,
        leadership=ha.election,
        components=ha.components,
        announce=False,
        settle_delay=SETTLE_DELAY,
        inline_events=True,
    )
    station_handle = None
    try:
        dispatcher.start()
        ha.start(lambda: dispatcher.sync(timeout=0))
        _log.info("dispatcher %s running on root %r", dispatcher.id, settings.root)
        if station is not None:
            station_handle = start_station(station, db)
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        _log.info("dispatcher %s stopping", dispatcher.id)
        if station_handle is not None:
            station_handle.stop()
        dispatcher.stop()
        ha.stop()  # after the dispatcher's last batch: hand the lease over at once
        db.close()
    return dispatcher
