"""A cloud's condition as people see it: the one decision ``atmosphere status``, the Weather
Station and its metrics share, in the words routing uses (docs/concepts.md, "Routing rules")."""

from __future__ import annotations

from enum import StrEnum


class CloudState(StrEnum):
    """What a registered cloud is doing, as one word."""

    IDLE = "idle"  # alive and up with a free slot: routing may give it a job
    BUSY = "busy"  # alive and up, every slot held: routing gives it nothing
    DRAINING = "draining"  # finishing what it holds, taking nothing new
    DEAD = "dead"  # heartbeat overdue or never seen: its jobs are requeued


def is_busy(held: int, capacity: int) -> bool:
    """True when a cloud holds as many jobs as it has room for (slots plus lent slots)."""
    return held >= capacity


def is_dead(heartbeat_age: float | None, dead_after: float) -> bool:
    """True when a cloud's heartbeat is older than ``dead_after`` seconds, or unknown."""
    return heartbeat_age is None or heartbeat_age > dead_after


def cloud_state(
    *, heartbeat_age: float | None, dead_after: float, draining: bool, held: int, capacity: int
) -> CloudState:
    """Dead before draining before busy: a dead cloud's inbox is requeued whatever it held."""
    if is_dead(heartbeat_age, dead_after):
        return CloudState.DEAD
    if draining:
        return CloudState.DRAINING
    return CloudState.BUSY if is_busy(held, capacity) else CloudState.IDLE
