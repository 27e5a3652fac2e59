"""Reading and rendering the fields of wire records (``jobs.py``, ``presence.py``).

A reader takes a decoded JSON object and the field's name and either returns the field or
raises ``InvalidRecord`` (a required field) or falls back to a default (an optional one), so
garbage in the database is reported the same way whichever record it sits in.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidRecord


def obj_of(raw: Any, what: str) -> dict[str, Any]:
    """``raw`` if it is an object, else InvalidRecord naming ``what``."""
    if not isinstance(raw, dict):
        raise InvalidRecord(f"{what} is not an object: {raw!r:.80}")
    return raw


def text_of(raw: dict[str, Any], key: str, what: str) -> str:
    """A required non-empty string field."""
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"{what}.{key} is not a non-empty string")
    return value


def number_of(raw: dict[str, Any], key: str, default: float | None = None) -> float | None:
    """An optional number field (booleans are not numbers)."""
    value = raw.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def int_of(raw: dict[str, Any], key: str, default: int = 0) -> int:
    """An optional integer field (a float is truncated; booleans are not numbers)."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def pruned(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` without its None values: absent on the wire, not null."""
    return {k: v for k, v in out.items() if v is not None}
