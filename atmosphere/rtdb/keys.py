"""Keys and paths: what may name a child, and a path as its segments."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

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


_INVALID_IN_PATH = re.compile(r"[\[\].#$\x00-\x1f\x7f]")  # _INVALID_KEY but "/"
_SHORT_KEY = MAX_KEY_BYTES // 4  # a key this short is within the limit whatever its characters


def plainly_valid_paths(paths: Collection[str]) -> bool:
    """True when every path names a child through valid keys, tested at once (one regex over
    all of them); False says nothing: check each path then (split_path, invalid_key)."""
    try:
        joined = "/".join(paths)
    except TypeError:
        return False
    if _INVALID_IN_PATH.search(joined) is not None:
        return False
    return all(0 < len(p) <= _SHORT_KEY and p.strip("/") for p in paths)


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
