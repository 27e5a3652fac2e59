"""Queries: orderBy / startAt / endAt / equalTo / limits with Firebase's cross-type order."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .values import InvalidData

FILTER_PARAMS = ("orderBy", "startAt", "endAt", "equalTo", "limitToFirst", "limitToLast")

_INT_KEY = re.compile(r"-?\d{1,11}")
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_MIN_KEY: tuple[Any, ...] = (-1,)
_MAX_KEY: tuple[Any, ...] = (2,)


def key_order(key: str) -> tuple[Any, ...]:
    """Sort key of nameCompare: int32-like keys numerically (shorter first), then strings."""
    if len(key) <= 12 and _INT_KEY.fullmatch(key):  # push ids (20 chars) skip the regex
        n = int(key)
        if _INT32_MIN <= n <= _INT32_MAX:
            return (0, n, len(key), "")
    return (1, 0, 0, key)


def value_order(v: Any) -> tuple[int, Any]:
    """Sort key of an index value: null < false < true < numbers < strings < objects."""
    if v is None:
        return (0, 0)
    if v is False:
        return (1, 0)
    if v is True:
        return (2, 0)
    t = type(v)
    if t is int or t is float:
        return (3, v)
    if t is str:
        return (4, v)
    return (5, 0)


@dataclass(frozen=True)
class Bound:
    """One query bound: an index value and an optional key cursor."""

    value: Any
    key: str | None = None


@dataclass(frozen=True)
class Query:
    """A parsed query: the index and the window."""

    order_by: str  # "$key", "$value", "$priority" or a child path "a/b"
    start: Bound | None = None
    end: Bound | None = None
    limit_first: int | None = None
    limit_last: int | None = None

    @property
    def child_path(self) -> list[str]:
        """The segments of a child index path."""
        return [s for s in self.order_by.split("/") if s]


def _parse_bound(text: str) -> Bound:
    try:
        return Bound(_primitive(orjson.loads(text)))
    except orjson.JSONDecodeError:
        pass
    head, sep, tail = text.rpartition(",")
    if sep:
        try:
            value, key = orjson.loads(head), orjson.loads(tail)
        except orjson.JSONDecodeError:
            value = key = None
        else:
            if isinstance(key, str):
                return Bound(_primitive(value), key)
    raise InvalidData("Constraint index field must be a JSON primitive")


def _primitive(v: Any) -> Any:
    if isinstance(v, dict | list):
        raise InvalidData("Constraint index field must be a JSON primitive")
    return v


def _parse_limit(name: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidData(f"{name} must be a positive integer")
    return int(text)


def _check_combinations(params: dict[str, str]) -> None:
    if "limitToFirst" in params and "limitToLast" in params:
        raise InvalidData("Only one of limitToFirst and limitToLast may be specified")
    if "equalTo" in params and ("startAt" in params or "endAt" in params):
        raise InvalidData("equalTo cannot be combined with startAt or endAt")


def parse_query(params: dict[str, str]) -> Query | None:
    """Build a Query from the request parameters (None without any); raise InvalidData."""
    present = [p for p in FILTER_PARAMS if p in params]
    if not present:
        return None
    if "orderBy" not in params:
        raise InvalidData("orderBy must be defined when other query parameters are defined")
    try:
        order_by = orjson.loads(params["orderBy"])
    except orjson.JSONDecodeError:
        order_by = None
    if not isinstance(order_by, str) or not order_by.strip("/"):
        raise InvalidData("orderBy must be a valid JSON encoded path")
    _check_combinations(params)
    start = _parse_bound(params["startAt"]) if "startAt" in params else None
    end = _parse_bound(params["endAt"]) if "endAt" in params else None
    if "equalTo" in params:
        start = end = _parse_bound(params["equalTo"])
    if order_by == "$key":
        for b in (start, end):
            if b is not None and (not isinstance(b.value, str) or b.key is not None):
                raise InvalidData("orderBy $key requires string bounds without a key cursor")
    lf = _parse_limit("limitToFirst", params["limitToFirst"]) if "limitToFirst" in params else None
    ll = _parse_limit("limitToLast", params["limitToLast"]) if "limitToLast" in params else None
    if not order_by.startswith("$"):
        order_by = order_by.strip("/")
    elif order_by not in ("$key", "$value", "$priority"):
        raise InvalidData("orderBy must be a valid JSON encoded path")
    return Query(order_by, start, end, lf, ll)


def _index_of(q: Query, child: Any, segments: list[str]) -> Any:
    if q.order_by == "$value":
        node = child
    elif q.order_by == "$priority":
        return child.get(".priority") if type(child) is dict else None
    else:
        node = child
        for s in segments:
            if type(node) is not dict:
                return None
            node = node.get(s)
    if type(node) is dict and ".value" in node:
        return node[".value"]
    return node


def _priority_order(v: Any) -> tuple[int, Any]:
    order = value_order(v)
    return order if order[0] in (0, 3, 4) else (0, 0)


def run_query(q: Query, node: Any) -> Any:
    """The children of ``node`` selected by ``q``, stored form (None if ``node`` is no object).

    Runs on the server's one thread, over every child: each pass is a plain comprehension,
    full sort keys are built only for the children that can be in the answer, and a limit
    takes its window with a heap instead of sorting everything.
    """
    if type(node) is not dict or ".value" in node:
        return None
    if q.order_by == "$key":
        keys = _by_key(q, node)
    else:
        fast = _fast_by_index(q, node)
        keys = fast if fast is not None else _by_index(q, node)
    return {k: node[k] for k in keys}


def _by_key(q: Query, node: dict[str, Any]) -> list[str]:
    # Keys longer than 12 characters (push ids) cannot be int32-like: they sort as strings,
    # after every int-like key, in plain string order.
    lo = key_order(q.start.value) if q.start else None
    hi = key_order(q.end.value) if q.end else None
    texts = [k for k in node if len(k) > 12]
    ints: list[tuple[tuple[Any, ...], str]] = []
    for k in [k for k in node if len(k) <= 12]:
        if k != ".priority":
            order = key_order(k)
            if order[0] == 0:
                ints.append((order, k))
            else:
                texts.append(k)
    ints = [e for e in ints if (lo is None or e[0] >= lo) and (hi is None or e[0] <= hi)]
    if hi is not None and hi[0] == 0:
        texts = []
    elif hi is not None:
        texts = [k for k in texts if k <= hi[3]]
    if lo is not None and lo[0] == 1:
        texts = [k for k in texts if k >= lo[3]]
    ints.sort()
    int_keys = [k for _, k in ints]
    if q.limit_first is not None:
        n = q.limit_first
        return (int_keys + sorted(heapq.nsmallest(max(0, n - len(int_keys)), texts)))[:n]
    if q.limit_last is not None:
        # Not a heap: keys come in about the order they were written (push ids: time order),
        # which a heap's newest-so-far loop handles worst and timsort best.
        n = q.limit_last
        return (int_keys + sorted(texts)[-n:])[-n:]
    return int_keys + sorted(texts)


def _fast_by_index(q: Query, node: dict[str, Any]) -> list[str] | None:
    """Keys for a child-path query whose bounds are both numbers or both strings (the
    dispatcher's retention and the Weather Station's searches); None for any other query."""
    if q.order_by.startswith("$") or q.start is None or q.end is None:
        return None
    kind = _kind(q.start.value)
    if kind is None or kind is not _kind(q.end.value):
        return None
    segments = q.child_path
    if len(segments) == 1:
        field = segments[0]
        pairs = [(c.get(field) if type(c) is dict else None, k) for k, c in node.items()]
    else:
        pairs = [(_index_of(q, c, segments), k) for k, c in node.items()]
    if any(type(v) is dict for v, _ in pairs):
        return None  # a value with a priority somewhere: the general path unwraps it
    lo, hi = q.start.value, q.end.value
    found: list[tuple[Any, str]]
    if kind is str:
        found = [(v, k) for v, k in pairs if type(v) is str and lo <= v <= hi]
    else:
        found = [(v, k) for v, k in pairs if (type(v) is int or type(v) is float) and lo <= v <= hi]
    if q.start.key is not None or q.end.key is not None:
        start, end = (
            _bound_key(q.start, value_order, _MIN_KEY),
            _bound_key(q.end, value_order, _MAX_KEY),
        )
        found = [e for e in found if start <= value_order(e[0]) + key_order(e[1]) <= end]
    return _window(found, q.limit_first, q.limit_last)


def _kind(value: Any) -> type | None:
    t = type(value)
    if t is int or t is float:
        return int
    return str if t is str else None


def _window(found: list[tuple[Any, str]], first: int | None, last: int | None) -> list[str]:
    """Keys of (value, key) pairs of one kind in (value, nameCompare) order, limits applied.

    A heap picks the window by (value, key as text); only the pairs that tie with its edge
    value are then ordered by nameCompare, so int-like keys still sort exactly.
    """
    n = first if first is not None else last
    if n is not None and len(found) > n:
        picked = heapq.nsmallest(n, found) if first is not None else sorted(found)[-n:][::-1]
        edge = picked[-1][0]
        found = [e for e in picked if e[0] != edge] + [e for e in found if e[0] == edge]
    found.sort(key=lambda e: (e[0], key_order(e[1])))
    if first is not None:
        found = found[:first]
    elif last is not None:
        found = found[-last:]
    return [k for _, k in found]


def _by_index(q: Query, node: dict[str, Any]) -> list[str]:
    segments = q.child_path
    rank = _priority_order if q.order_by == "$priority" else value_order
    lo = _bound_key(q.start, rank, _MIN_KEY) if q.start else None
    hi = _bound_key(q.end, rank, _MAX_KEY) if q.end else None
    keyed = [
        (rank(_index_of(q, v, segments)) + key_order(k), k)
        for k, v in node.items()
        if k != ".priority"
    ]
    keyed = [e for e in keyed if (lo is None or e[0] >= lo) and (hi is None or e[0] <= hi)]
    if q.limit_first is not None and len(keyed) > q.limit_first:
        keyed = heapq.nsmallest(q.limit_first, keyed)
    elif q.limit_last is not None and len(keyed) > q.limit_last:
        keyed.sort()
        keyed = keyed[-q.limit_last :]
    keyed.sort()
    return [k for _, k in keyed]


def _bound_key(b: Bound, rank: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
    order: tuple[Any, ...] = rank(b.value)
    return order + (key_order(b.key) if b.key is not None else default)
