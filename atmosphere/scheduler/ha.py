"""High availability for the dispatcher: the election as its Leadership, plus periodic schedules.

Several ``atmosphere dispatcher`` processes may run; ``HighAvailability`` gives each one an
``Election`` (leader lease + presence) to pass as the dispatcher's ``leadership`` and the
``PeriodicComponent`` to pass in its ``components``. Start it after the dispatcher and stop it
after the dispatcher, so a clean shutdown flushes the last batch and *then* hands the lease over.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from atmosphere.db.base import Database
from atmosphere.paths import Paths
from atmosphere.scheduler.election import Election
from atmosphere.scheduler.ticker import PeriodicComponent
from atmosphere.settings import Settings

if TYPE_CHECKING:
    from atmosphere.scheduler.seams import Component

_NOT_IN_KEYS = re.compile(r"[.$#\[\]/\x00-\x1f\x7f]")


def dispatcher_id() -> str:
    """A fresh dispatcher id, ``host-pid-xxxx``, safe as a database key.

    The random part matters: two containers can share a host name and a pid, and two
    dispatchers with one id would both believe they hold the lease.
    """
    return _NOT_IN_KEYS.sub("-", f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}")


class HighAvailability:
    """The election and the periodic component of one dispatcher process."""

    def __init__(self, db: Database, settings: Settings, me: str | None = None) -> None:
        self.id = me or dispatcher_id()
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
