"""Leadership: which of several dispatchers acts, and the epoch its assignments carry.

``Leadership`` is all the dispatcher asks (``is_leader``, ``epoch``). ``SoleLeader`` is the
default for one dispatcher; ``election.py`` is the real one for several (the lease's I/O:
campaign, renew, hand over), deciding through ``lease.py`` (pure). The protocol's "Leader
election" section says what is written where.
"""

from __future__ import annotations

from typing import Protocol


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
