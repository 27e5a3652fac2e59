"""Running the dispatcher as a process: connect, start, serve the station, stop cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from atmosphere.db.base import Database
from atmosphere.errors import AtmosphereError
from atmosphere.scheduler.dispatcher import Dispatcher
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
    from atmosphere.scheduler.ha import HighAvailability

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
