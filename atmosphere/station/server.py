"""Serving the station with uvicorn on a background thread (the dispatcher and the CLI use it)."""

from __future__ import annotations

import threading
import time

import uvicorn

from atmosphere.db.base import Database
from atmosphere.errors import ConfigError
from atmosphere.settings import Settings

from .app import create_app
from .core import Station

START_TIMEOUT = 10.0


class StationHandle:
    """A running station: where it listens, and how to stop it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, station: Station) -> None:
        self._server = server
        self._thread = thread
        self._station = station
        sockets = server.servers[0].sockets if server.servers else []
        host, port = sockets[0].getsockname()[:2] if sockets else (server.config.host, 0)
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{shown}:{self.port}"

    def stop(self) -> None:
        """End open event streams, stop the server and wait for its thread."""
        self._station.closing.set()
        self._station.live.stop()
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the CLI)."""
        self._thread.join()


def serve(
    settings: Settings, database: Database, host: str | None = None, port: int | None = None
) -> StationHandle:
    """Start the station on ``host:port`` (default: the settings'); port 0 picks a free one."""
    settings = settings.replace(station_host=host, station_port=port)
    app = create_app(settings, database)
    config = uvicorn.Config(
        app,
        host=settings.station_host,
        port=settings.station_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="weather-station", daemon=True)
    thread.start()
    # uvicorn flips `started` once its sockets listen; a bind error ends the thread instead.
    deadline = time.monotonic() + START_TIMEOUT
    pause = threading.Event()
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        pause.wait(0.02)
    if not server.started:
        server.should_exit = True
        raise ConfigError(
            f"the Weather Station could not listen on {settings.station_host}:{settings.station_port}"
        )
    return StationHandle(server, thread, app.state.station)
