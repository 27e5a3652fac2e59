"""Firebase's value rules (``atmosphere.rtdb``) as the client states a refusal:
``RequestRefused``, raised before a write leaves the process."""

from __future__ import annotations

from typing import Any

from atmosphere.errors import RequestRefused
from atmosphere.rtdb import values
from atmosphere.rtdb.keys import Segments, invalid_key


def check_path(segments: Segments) -> Segments:
    """Return ``segments``; RequestRefused when one is no valid Firebase key."""
    bad = invalid_key(segments)
    if bad is not None:
        raise RequestRefused(f"invalid key {bad!r}: keys may not be empty or contain . $ # [ ] /")
    return segments


def normalise(value: Any, depth: int = 0) -> Any:
    """The stored form of ``value`` written ``depth`` levels below the root (None: nothing).

    Lists become index dicts, nulls and empty objects vanish, ``{".sv": ...}`` becomes a
    ``ServerValue`` for ``resolve_server_values``; RequestRefused for what Firebase refuses.
    """
    if depth > values.MAX_DEPTH:
        raise RequestRefused(f"data is nested more than {values.MAX_DEPTH} levels deep")
    try:
        return values.normalise(value, depth)[0]
    except values.InvalidData as exc:
        raise RequestRefused(str(exc)) from None


def resolve_server_values(value: Any, now_ms: int, current: Any) -> Any:
    """Replace the server values in a normalised value; ``current`` is the old value there."""
    return values.resolve(value, now_ms, current)
