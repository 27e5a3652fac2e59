"""The dispatcher leader lease at ``live/lease`` = {owner, epoch, expires}: pure decisions.

Only the holder of the lease assigns, settles and fires ticks. The lease is changed only by a
database transaction (compare-and-set) running ``claim()``:

- absent or released (``expires == 0``): take it with ``epoch + 1``;
- held by me: renew it (same epoch, later ``expires``);
- held by someone else and *unchanged for a whole lease period on my own clock*: take it over
  with ``epoch + 1``. Standbys time this from the last change they saw, never from ``expires``,
  so clock skew between hosts cannot make two leaders.

The holder counts its own validity from *before* it sent the renewal, and stops writing a margin
before a standby could possibly take over; every assignment carries the epoch so a cloud can
reject a deposed leader's late writes (fencing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atmosphere.wiretime import from_ms, to_ms

# The leader stops writing after this fraction of a lease period without a renewal, leaving
# the rest as a margin for in-flight writes before any standby can take over.
VALID_FRACTION = 0.8
# Renew this many times per lease period, so a couple of slow renewals do not cost leadership.
RENEWALS_PER_LEASE = 3
# A renewal never writes an ``expires`` that reads as released, whatever the clock says.
_EARLIEST = from_ms(1)


@dataclass(frozen=True)
class Lease:
    """The lease record. ``expires`` is server time in seconds (ms on the wire); 0 means
    released (take over at once)."""

    owner: str
    epoch: int
    expires: float

    @property
    def released(self) -> bool:
        """True when the holder handed the lease back."""
        return self.expires <= 0

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "epoch": self.epoch, "expires": to_ms(self.expires)}

    @classmethod
    def from_json(cls, raw: Any) -> Lease | None:
        """The lease, or None when absent or not shaped like one (treated as absent)."""
        if not isinstance(raw, dict):
            return None
        owner: Any = raw.get("owner")
        epoch: Any = raw.get("epoch")
        expires: Any = raw.get("expires")
        if not isinstance(owner, str) or not _is_int(epoch) or not _is_int(expires):
            return None
        return cls(owner=owner, epoch=int(epoch), expires=from_ms(int(expires)))


def claim(
    current: Lease | None,
    *,
    me: str,
    now: float,
    lease_seconds: float,
    stale: Lease | None = None,
    min_epoch: int = 0,
) -> Lease | None:
    """The lease to write, or None to leave ``current`` as it is (``now``: server time).

    ``stale`` is the value this process has seen unchanged for a whole lease period (a standby's
    local timer ran out on it); ``min_epoch`` is the highest epoch seen, in case the record was
    deleted by hand, so epochs never go backwards.
    """
    if current is None or current.released:
        base = max(min_epoch, current.epoch if current else 0)
        return Lease(owner=me, epoch=base + 1, expires=now + lease_seconds)
    if current.owner == me:
        return Lease(owner=me, epoch=current.epoch, expires=max(now + lease_seconds, _EARLIEST))
    if stale is not None and current == stale:
        return Lease(owner=me, epoch=current.epoch + 1, expires=now + lease_seconds)
    return None


def release(current: Lease | None, *, me: str) -> Lease | None:
    """The released lease to write on a clean shutdown, or None if it is not mine."""
    if current is None or current.owner != me or current.released:
        return None
    return Lease(owner=me, epoch=current.epoch, expires=0)


def holds(lease: Lease | None, *, me: str, epoch: int) -> bool:
    """True when ``lease`` says ``me`` leads with ``epoch``."""
    return lease is not None and lease.owner == me and lease.epoch == epoch and not lease.released


def takeover_due(seen: Lease | None, seen_for: float, lease_seconds: float) -> bool:
    """Should a standby try to take the lease? ``seen_for``: seconds since it last changed."""
    if seen is None or seen.released:
        return True
    return seen_for >= lease_seconds


def valid_for(renew_started: float, lease_seconds: float) -> float:
    """The monotonic time until which a renewal started at ``renew_started`` lets us lead."""
    return renew_started + lease_seconds * VALID_FRACTION


def renew_interval(lease_seconds: float) -> float:
    """Seconds between renewals."""
    return lease_seconds / RENEWALS_PER_LEASE


def lease_age(lease: Lease | None, now: float, lease_seconds: float) -> float | None:
    """Seconds since the lease was last renewed (None if absent or released)."""
    if lease is None or lease.released:
        return None
    return max(0.0, now - (lease.expires - lease_seconds))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value)


def describe(raw: Any, now: float, lease_seconds: float) -> str:
    """One line for ``atmosphere status``: who leads, with which epoch, how fresh the lease is."""
    lease = Lease.from_json(raw)
    if lease is None:
        return "lease: none (no dispatcher has led yet)"
    head = f"lease: owner {lease.owner}  epoch {lease.epoch}"
    if lease.released:
        return f"{head}  released (a standby takes over at once)"
    left = lease.expires - now
    if left < 0:
        return f"{head}  [red]expired {-left:.1f}s ago[/red] (no leader is renewing it)"
    age = lease_age(lease, now, lease_seconds) or 0.0
    return f"{head}  renewed {age:.1f}s ago, expires in {left:.1f}s"
