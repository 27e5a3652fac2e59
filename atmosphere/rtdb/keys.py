"""Keys and paths: what may name a child, and a path as its segments."""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_KEY_BYTES = 768

Segments = tuple[str, ...]

_INVALID_KEY = re.compile(r"[\[\].#$/\x00-\x1f\x7f]")

# A memo of keys seen valid (the same few keys recur), cleared when full but never replaced:
# a hot loop may test ``key in VALID_KEYS_SEEN`` before calling is_valid_key.
VALID_KEYS_SEEN: set[str] = set()


def is_valid_key(key: str) -> bool:
    """True if ``key`` may name a child (no forbidden characters, not empty, not too long)."""
    if key in VALID_KEYS_SEEN:
        return True
    if not key or _INVALID_KEY.search(key) is not None:
        return False
    if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return False
    if len(VALID_KEYS_SEEN) >= 50_000:
        VALID_KEYS_SEEN.clear()
    VALID_KEYS_SEEN.add(key)
    return True


def split_path(path: str) -> Segments:
    """'/a//b/' -> ('a', 'b'); the root is ()."""
    return tuple(s for s in path.split("/") if s)


def join_path(segments: Sequence[str]) -> str:
    """('a', 'b') -> '/a/b'; () -> '/' (the event path form)."""
    return "/" + "/".join(segments)


def invalid_key(segments: Sequence[str]) -> str | None:
    """The first segment that is no valid key, or None when every one is."""
    for s in segments:
        if not is_valid_key(s):
            return s
    return None
