"""The running station's state: database, live mirror, stats cache and secrets, in one object."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from atmosphere.db.base import Database
from atmosphere.errors import DatabaseError
from atmosphere.paths import Paths
from atmosphere.settings import Settings

from .live import LiveState
from .security import Keys
from .stats_store import StatsStore

STATS_REFRESH = 5.0  # s between reads of the open stats minutes
LIVE_WAIT = 3.0  # s to wait for the first live snapshot before serving anyway
_log = logging.getLogger(__name__)


class Station:
    """Everything the station's handlers share; ``start()``/``stop()`` run its background work."""

    def __init__(
        self, settings: Settings, database: Database, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.db = database
        self.paths = Paths(settings.root)
        self.keys = Keys(settings.station_token)
        self.live = LiveState(database, self.paths, settings.dead_after, clock)
        self.stats = StatsStore(database, self.paths, clock)
        self.closing = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        """Open the live stream and start refreshing stats (never blocking for long: a slow
        database shows as "reconnecting" on the page rather than delaying the server)."""
        self.closing.clear()
        self.live.start(wait=LIVE_WAIT)
        self._poller = threading.Thread(target=self._poll, name="station-stats", daemon=True)
        self._poller.start()

    def refresh_stats(self) -> None:
        """Re-read the stats minutes that may have changed; log and carry on when offline."""
        try:
            self.stats.refresh()
        except DatabaseError as exc:
            _log.warning("station: cannot read stats: %s", exc)

    def _poll(self) -> None:
        self.refresh_stats()  # the whole chart window, once
        while not self.closing.wait(STATS_REFRESH):
            self.refresh_stats()

    def stop(self) -> None:
        """Stop background work and end every open event stream."""
        self.closing.set()
        self.live.stop()
        if self._poller is not None:
            self._poller.join(timeout=STATS_REFRESH + 1)
            self._poller = None
