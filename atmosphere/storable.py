"""Would the database store this value? Its limits, checked before a write (pure).

A write the database refuses fails whole, so a maker's data and a handler's result are checked
here first, where the message can say what is wrong and where, instead of meeting a 400 later.
The limits are Firebase's, as every backend enforces them (``rtdb/values.py``):

- nesting: 32 levels below the database ROOT, the path it is written at included;
- keys: Firebase's key rules (``jobs.check_key``);
- strings: 10 MB each, valid UTF-8 (no lone surrogates);
- one write: ``MAX_WRITE_BYTES``. A value is written several times in one update (a job's record
  and its queue entry; a result in the outcome, the record and the reply), so one value may
  take a quarter of it (``MAX_VALUE_BYTES``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .errors import InvalidJob
from .jobs import check_key
from .rtdb.keys import is_valid_key
from .rtdb.values import MAX_DEPTH, MAX_STRING_BYTES

# Firebase takes 16 MB in one write from its SDKs (256 MB over REST); the embedded server's
# default body limit is 32 MiB. Staying under the smallest keeps every backend happy.
MAX_WRITE_BYTES = 16 * 1024 * 1024
MAX_VALUE_BYTES = MAX_WRITE_BYTES // 4

_SHOWN_KEYS = 6  # of a location's path, in messages
_SHOWN_KEY_CHARS = 24


def encoded_size(writes: Mapping[str, Any]) -> int:
    """How many bytes ``writes`` take as compact JSON (orjson's count, UTF-8)."""
    try:
        return len(orjson.dumps(writes, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:  # an int beyond 64 bits: the stdlib still writes it
        return len(json.dumps(writes, separators=(",", ":")).encode())


def plan_batches(
    sizes: Sequence[int], max_count: int, max_bytes: int
) -> tuple[list[list[int]], list[int]]:
    """Group items, in order, into updates of at most ``max_count`` items and ``max_bytes``.

    Returns the groups (lists of indexes) and the indexes of items over ``max_bytes`` alone,
    which no update can carry (pure).
    """
    groups: list[list[int]] = []
    too_large: list[int] = []
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if size > max_bytes:
            too_large.append(i)
            continue
        if current and (len(current) >= max_count or total + size > max_bytes):
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        groups.append(current)
    return groups, too_large


def depth_of(path: str) -> int:
    """How many levels below the database root ``path`` ("a/b/c": 3) is."""
    return sum(1 for segment in path.split("/") if segment)


def value_problem(value: Any, what: str, *, depth: int, max_bytes: int) -> str | None:
    """What the database would refuse in ``value`` written at ``depth`` (None: nothing).

    ``what`` names the value in the message ("result", "job data"); ``max_bytes`` is the
    caller's own limit (capped at ``MAX_VALUE_BYTES``).
    """
    problem = _shape_problem(value, what, MAX_DEPTH - depth, depth)
    if problem is not None:
        return problem
    try:
        size = len(orjson.dumps(value))  # what the client sends (UTF-8, compact)
    except TypeError:  # an integer beyond 64 bits (sent through the stdlib), or a lone surrogate
        try:
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        except UnicodeEncodeError:
            return _utf8_problem(value, what)
    limit = min(max_bytes, MAX_VALUE_BYTES)
    if size > limit:
        why = " (one write carries it several times)" if limit == MAX_VALUE_BYTES else ""
        return f"{what} is {size} bytes, over the {limit}-byte limit{why}"
    return None


def check_value(value: Any, what: str, *, depth: int, max_bytes: int) -> None:
    """Raise InvalidJob saying what the database would refuse in ``value``, if anything."""
    problem = value_problem(value, what, depth=depth, max_bytes=max_bytes)
    if problem is not None:
        raise InvalidJob(problem)


# A location while walking: (key, parent location), built per container, not per leaf.
_Path = tuple[str, "_Path"] | None


def _shape_problem(value: Any, what: str, allowed: int, depth: int) -> str | None:
    """Types, keys, long strings and nesting, walked without recursion (values nest deeply).

    This runs on every result and every submit, so the common case (short strings, numbers,
    keys seen before) costs a type test or two.
    """
    if not isinstance(value, (dict, list, tuple)):
        return _leaf_problem(value, what, None)
    stack: list[tuple[Any, int, _Path]] = [(value, 1, None)]  # a container is one level
    while stack:
        node, level, path = stack.pop()
        if level > allowed:
            return _too_deep(node, level, path, what, allowed, depth)
        problem = _children_problem(node, level, path, what, stack)
        if problem is not None:
            return problem
    return None


_PLAIN = frozenset({str, int, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})


def _children_problem(
    node: Any, level: int, path: _Path, what: str, stack: list[tuple[Any, int, _Path]]
) -> str | None:
    """Check a container's keys and leaves; put its containers on ``stack``."""
    is_dict = isinstance(node, dict)
    for key, child in node.items() if is_dict else enumerate(node):
        if is_dict and (type(key) is not str or not is_valid_key(key)):
            problem = _key_problem(key, what, path)
            if problem is not None:
                return problem
        kind = type(child)
        if kind in _CONTAINERS or (kind not in _PLAIN and isinstance(child, (dict, list, tuple))):
            stack.append((child, level + 1, (str(key), path)))
        elif kind not in _PLAIN or (kind is str and len(child) * 4 > MAX_STRING_BYTES):
            # Floats, subclasses, strings long enough to be too long: the full check.
            problem = _leaf_problem(child, what, (str(key), path))
            if problem is not None:
                return problem
    return None


def _too_deep(node: Any, level: int, path: _Path, what: str, allowed: int, depth: int) -> str:
    nested = level - 1 + _nesting(node)
    return (
        f"{what} is nested {nested} levels deep (at {_where(what, path)}); written {depth} "
        f"levels below the database root, it may nest {max(allowed, 0)} at most (the database "
        f"allows {MAX_DEPTH} levels)"
    )


def _nesting(node: Any, most: int = 1000, visits: int = 100_000) -> int:
    """How many levels ``node`` nests (bounded, so a value that holds itself ends)."""
    deepest = 0
    stack = [(node, 1)]
    while stack and visits > 0:
        current, level = stack.pop()
        visits -= 1
        if isinstance(current, dict):
            children = list(current.values())
        elif isinstance(current, (list, tuple)):
            children = list(current)
        else:
            continue
        deepest = max(deepest, level)
        if level < most:
            stack.extend((child, level + 1) for child in children)
    return deepest


def _key_problem(key: Any, what: str, path: _Path) -> str | None:
    where = f"key in {_where(what, path)}"
    if isinstance(key, str) and not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            return f"{where} {key!r} is not valid UTF-8"
    try:
        check_key(key, where)
    except InvalidJob as exc:
        return str(exc)
    return None


def _leaf_problem(value: Any, what: str, path: _Path) -> str | None:
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{what} is not JSON-serialisable: {_where(what, path)} is {value!r}"
    if isinstance(value, str):
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            return f"{what} holds a string that is not valid UTF-8 at {_where(what, path)}"
        if size > MAX_STRING_BYTES:
            return (
                f"{what} holds a string of {size} bytes at {_where(what, path)}; "
                f"the database stores strings of {MAX_STRING_BYTES} bytes at most"
            )
        return None
    kind = type(value).__name__
    return f"{what} is not JSON-serialisable: {_where(what, path)} is a {kind}"


def _utf8_problem(value: Any, what: str) -> str:
    """Where the string that is not valid UTF-8 is (the slow walk, for the message only)."""
    stack: list[tuple[Any, _Path]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            problem = _leaf_problem(node, what, path)
            if problem is not None:
                return problem
        elif isinstance(node, dict):
            for key, child in node.items():
                problem = _key_problem(key, what, path)
                if problem is not None:
                    return problem
                stack.append((child, (str(key), path)))
        elif isinstance(node, (list, tuple)):
            stack.extend((child, (str(i), path)) for i, child in enumerate(node))
    return f"{what} holds a string that is not valid UTF-8"


def _where(what: str, path: _Path) -> str:
    """``result.a.b``, the path cut short when long."""
    keys: list[str] = []
    while path is not None:
        keys.append(path[0])
        path = path[1]
    keys.reverse()
    shown = [k if len(k) <= _SHOWN_KEY_CHARS else k[:_SHOWN_KEY_CHARS] + "~" for k in keys]
    text = ".".join([what, *shown[:_SHOWN_KEYS]])
    return text + "..." if len(keys) > _SHOWN_KEYS else text
