"""A query's request parameters (orderBy, startAt, endAt, equalTo, limits) as a ``Query``."""

from __future__ import annotations

from typing import Any

import orjson

from atmosphere.rtdb.query import Bound, Query
from atmosphere.rtdb.values import InvalidData

FILTER_PARAMS = ("orderBy", "startAt", "endAt", "equalTo", "limitToFirst", "limitToLast")


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
