"""Pure JSON-tree operations with Firebase semantics (shared by MemoryDatabase and Mirror).

Trees are plain dicts that are never mutated once built: writes copy the dicts along the
written path only, so an old root stays a valid snapshot and unchanged subtrees keep their
identity (cheap change detection).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atmosphere.errors import RequestRefused

Segments = tuple[str, ...]

_INVALID_KEY = re.compile(r"[\[\].#$/\x00-\x1f\x7f]")
_ARRAY_KEY = re.compile(r"^(0|[1-9]\d*)$")
_MAX_DEPTH = 32
_INT64 = 2**63


def split_path(path: str) -> Segments:
    """'/a//b/' -> ('a', 'b'); the root is ()."""
    return tuple(s for s in path.split("/") if s)


def join_path(segments: Sequence[str]) -> str:
    """('a', 'b') -> '/a/b'; () -> '/' (the event path form)."""
    return "/" + "/".join(segments)


def check_key(key: str) -> None:
    """Raise RequestRefused when ``key`` is not a valid Firebase key."""
    if not key or _INVALID_KEY.search(key) or len(key.encode()) > 768:
        raise RequestRefused(f"invalid key {key!r}: keys may not be empty or contain . $ # [ ] /")


def check_path(segments: Segments) -> Segments:
    """Validate every segment of a path and return it."""
    for s in segments:
        check_key(s)
    return segments


def normalise(value: Any, depth: int = 0) -> Any:
    """A fresh stored form of ``value``: lists become index dicts, nulls and empty dicts vanish.

    Server-value placeholders (``{".sv": ...}``) are kept; ``resolve_server_values`` removes them.
    """
    if depth > _MAX_DEPTH:
        raise RequestRefused("data is nested more than 32 levels deep")
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise RequestRefused(f"{value!r} is not a valid JSON number")
        return value
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        if ".sv" in value:
            return _check_server_value(value)
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        raise RequestRefused(f"{type(value).__name__} is not JSON")
    out: dict[str, Any] = {}
    for k, v in items:
        if not isinstance(k, str):
            raise RequestRefused(f"key {k!r} is not a string")
        check_key(k)
        child = normalise(v, depth + 1)
        if child is not None and child != {}:
            out[k] = child
    return out or None


def _check_server_value(value: Mapping[str, Any]) -> dict[str, Any]:
    sv = value[".sv"]
    ok = len(value) == 1 and (
        sv == "timestamp"
        or (
            isinstance(sv, Mapping)
            and set(sv) == {"increment"}
            and isinstance(sv["increment"], (int, float))
            and not isinstance(sv["increment"], bool)
        )
    )
    if not ok:
        raise RequestRefused(f"unrecognized server value {dict(value)!r}")
    return {".sv": sv if isinstance(sv, str) else dict(sv)}


def resolve_server_values(value: Any, now_ms: int, current: Any) -> Any:
    """Replace ``.sv`` placeholders in a normalised value; ``current`` is the old value there."""
    if not isinstance(value, dict):
        return value
    if ".sv" in value:
        sv = value[".sv"]
        if sv == "timestamp":
            return now_ms
        return add_numbers(current, sv["increment"])
    out = {}
    for k, v in value.items():
        cur = current.get(k) if isinstance(current, dict) else None
        out[k] = resolve_server_values(v, now_ms, cur)
    return out


def add_numbers(current: Any, delta: int | float) -> int | float:
    """Firebase increment: a non-number counts as absent; int64 overflow becomes a double."""
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return delta
    total = current + delta
    if isinstance(total, int) and not -_INT64 <= total < _INT64:
        return float(total)
    return total


def get_in(root: Any, segments: Segments) -> Any:
    """The stored value at ``segments`` (None when absent); shares structure with the tree."""
    node = root
    for s in segments:
        if not isinstance(node, dict):
            return None
        node = node.get(s)
        if node is None:
            return None
    return node


def set_in(root: Any, segments: Segments, value: Any) -> Any:
    """A new root with ``value`` (already normalised) at ``segments``; empty parents vanish."""
    if not segments:
        return value
    if value is None and not isinstance(root, dict):
        return root  # nothing below a primitive to delete: the primitive stays
    head, rest = segments[0], segments[1:]
    node = dict(root) if isinstance(root, dict) else {}
    child = set_in(node.get(head), rest, value)
    if child is None:
        node.pop(head, None)
    else:
        node[head] = child
    return node or None


def render(node: Any) -> Any:
    """A deep copy for callers, with Firebase's array rule (all keys small ints -> a list)."""
    if not isinstance(node, dict):
        return node
    out = {k: render(v) for k, v in node.items()}
    if all(_ARRAY_KEY.match(k) for k in out):
        top = max(int(k) for k in out)
        if top < 2 * len(out):
            return [out.get(str(i)) for i in range(top + 1)]
    return out


def shallow(node: Any) -> Any:
    """Firebase's ``shallow=true`` view: children replaced by True."""
    if isinstance(node, dict):
        return {k: True for k in node}
    return node
