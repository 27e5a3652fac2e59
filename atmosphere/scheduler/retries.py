"""Retry decisions and backoff: exponential with full jitter, capped (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable

from atmosphere.jobs import JobSpec, Outcome


def backoff_seconds(
    attempt: int,
    base: float,
    cap: float,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt ``attempt``: uniform in [d/2, d], d = min(cap, base*2^(attempt-1))."""
    exponent = max(0, attempt - 1)
    ceiling = min(cap, base * (2.0 ** min(exponent, 62)))
    ceiling = max(0.0, ceiling)
    # Half-jitter: never retry at once in a thundering herd, never wait longer than the cap.
    return ceiling / 2.0 + rand() * ceiling / 2.0


def may_retry(spec: JobSpec, outcome: Outcome) -> bool:
    """True when a failed attempt earns another one (asked for, and attempts remain)."""
    return (not outcome.ok) and not outcome.final and outcome.attempt <= spec.retries


def retry_delay(
    spec: JobSpec, outcome: Outcome, *, rand: Callable[[], float] = random.random
) -> float:
    """The wait before the next attempt: the handler's own delay if it gave one, else backoff."""
    if outcome.retry_delay is not None and outcome.retry_delay >= 0:
        return outcome.retry_delay
    return backoff_seconds(outcome.attempt, spec.retry_backoff, spec.retry_backoff_max, rand=rand)
