"""Time on the wire: the database stores epoch milliseconds, Python works in seconds.

The wire records (``jobs.py``, ``schedules.py``, the lease, the stats minutes) convert with
these as they parse and render, so nothing else multiplies or divides by 1000.
"""

from __future__ import annotations

from typing import Any


def to_ms(seconds: float) -> int:
    """Seconds as the integer milliseconds the wire carries (rounded, so a time read with
    ``from_ms`` renders back to the same integer)."""
    return round(seconds * 1000)


def from_ms(ms: float) -> float:
    """Wire milliseconds as seconds."""
    return ms / 1000


def parse_ms(value: Any) -> float | None:
    """A stored timestamp as seconds; None when absent, zero or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return from_ms(value)


def render_ms(seconds: float | None) -> int | None:
    """``to_ms`` for an optional time (None stays absent)."""
    return None if seconds is None else to_ms(seconds)
