"""What the dispatcher's collaborators may use of it (the ``Desk``), and how an add-on plugs
into its loop (``Component``).

Settling, housekeeping and the periodic component decide from the dispatcher's view of
``live/`` and write through its one batch. They get this small record, not the dispatcher:
what they can touch is written here, and a test can hand them a desk of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from atmosphere.paths import Paths
from atmosphere.scheduler.analytics import MinuteStats
from atmosphere.scheduler.state import Change, LiveState
from atmosphere.settings import Settings

if TYPE_CHECKING:
    from atmosphere.scheduler.poison import Fallback


class Write(Protocol):
    """Queue one decision's writes (full paths), with what to write if they are refused."""

    def __call__(self, values: dict[str, Any], fallback: Fallback | None = None) -> None: ...


class Count(Protocol):
    """Add to one of the dispatcher's counts (what happened, for logs, tests and benchmarks)."""

    def __call__(self, what: str, n: int = 1) -> None: ...


@dataclass(frozen=True)
class Desk:
    """The dispatcher's view, configuration, clock and the one way to write."""

    state: LiveState
    paths: Paths
    settings: Settings
    stats: MinuteStats
    write: Write
    count: Count
    now: Callable[[], float]  # the estimate of server time, in epoch seconds
    is_leader: Callable[[], bool]


class Component(Protocol):
    """An add-on run by the dispatcher's steps, one at a time (e.g. periodic schedules)."""

    def changed(self, changes: Sequence[Change]) -> None:
        """React to records of ``live/`` that changed (own writes included)."""

    def tick(self, desk: Desk, now: float) -> float | None:
        """Do timed work; return the monotonic time it wants to run next (None: no wish)."""
