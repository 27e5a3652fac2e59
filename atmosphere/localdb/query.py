"""Queries: orderBy / startAt / endAt / equalTo / limits with Firebase's cross-type order."""

from __future__ import annotations

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
    """The children of ``node`` selected by ``q``, stored form (None if ``node`` is no object)."""
    if type(node) is not dict or ".value" in node:
        return None
    items = [(k, v) for k, v in node.items() if k != ".priority"]
    if q.order_by == "$key":
        keyed = [(key_order(k), k, v) for k, v in items]
        lo = key_order(q.start.value) if q.start else None
        hi = key_order(q.end.value) if q.end else None
    else:
        segments = q.child_path
        rank = _priority_order if q.order_by == "$priority" else value_order
        keyed = [(rank(_index_of(q, v, segments)) + key_order(k), k, v) for k, v in items]
        lo = _bound_key(q.start, rank, _MIN_KEY) if q.start else None
        hi = _bound_key(q.end, rank, _MAX_KEY) if q.end else None
    keyed = [e for e in keyed if (lo is None or e[0] >= lo) and (hi is None or e[0] <= hi)]
    keyed.sort(key=lambda e: e[0])
    if q.limit_first is not None:
        keyed = keyed[: q.limit_first]
    elif q.limit_last is not None:
        keyed = keyed[-q.limit_last :]
    return {k: v for _, k, v in keyed}


def _bound_key(b: Bound, rank: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
    order: tuple[Any, ...] = rank(b.value)
    return order + (key_order(b.key) if b.key is not None else default)
