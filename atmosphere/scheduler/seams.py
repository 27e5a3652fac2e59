"""Where other parts plug into the dispatcher: leadership (the lease), components, its id."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from atmosphere.scheduler.state import Change

if TYPE_CHECKING:
    from atmosphere.scheduler.desk import Desk


def default_id() -> str:
    """``host-pid``, with the characters Firebase keys forbid replaced."""
    return re.sub(r"[.$#\[\]/\x00-\x1f\x7f]", "-", f"{socket.gethostname()}-{os.getpid()}")


class Leadership(Protocol):
    """Whether this dispatcher may act, and the epoch its assignments carry (issue 4's lease)."""

    @property
    def epoch(self) -> int: ...

    def is_leader(self) -> bool: ...


class SoleLeader:
    """The default: one dispatcher, always the leader, epoch 0."""

    epoch = 0

    def is_leader(self) -> bool:
        """Always True."""
        return True


class Component(Protocol):
    """An add-on run by the dispatcher's loop thread (e.g. periodic schedules, the lease)."""

    def changed(self, changes: Sequence[Change]) -> None:
        """React to records of ``live/`` that changed (own writes included)."""

    def tick(self, desk: Desk, now: float) -> float | None:
        """Do timed work; return the monotonic time it wants to run next (None: no wish)."""
