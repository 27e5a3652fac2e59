"""Running the dispatcher as a process: connect, start, serve the station, stop cleanly."""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from atmosphere.db.base import Database
from atmosphere.errors import AtmosphereError
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.settings import Settings

_log = logging.getLogger(__name__)


def start_station(settings: Settings, db: Database, port: int | None) -> Any:
    """Serve the Weather Station if it is installed; None (with a log line) when it is not."""
    serve = None
    for module_name in ("atmosphere.station", "atmosphere.station.server"):
        try:
            serve = getattr(importlib.import_module(module_name), "serve", None)
        except ImportError:
            continue
        if serve is not None:
            break
    if serve is None:
        _log.info("the Weather Station is not available in this build; not serving it")
        return None
    try:
        handle = serve(settings, db, port=port)
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
    station: bool = True,
    station_port: int | None = None,
    ready: threading.Event | None = None,
) -> Dispatcher:
    """Run a dispatcher until ``stop`` is set; start the embedded database if none is configured."""
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
        ha.start(dispatcher)
        _log.info("dispatcher %s running on root %r", dispatcher.id, settings.root)
        if station:
            station_handle = start_station(settings, db, station_port)
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
