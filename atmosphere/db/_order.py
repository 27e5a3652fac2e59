"""Firebase query ordering and filtering over a stored node (pure)."""

from __future__ import annotations

import re
from typing import Any

from atmosphere.errors import DatabaseError

from ._tree import get_in, split_path

_INT_KEY = re.compile(r"^-?0*\d{1,10}$")


def key_order(key: str) -> tuple[Any, ...]:
    """Firebase's nameCompare as a sort key: 32-bit integer keys first, numerically."""
    if _INT_KEY.match(key):
        n = int(key)
        if -(2**31) <= n < 2**31:
            return (0, n, len(key))
    return (1, key.encode("utf-16-be"))


def value_order(value: Any) -> tuple[Any, ...]:
    """Cross-type order: null < false < true < numbers < strings < objects (all equal)."""
    if value is None:
        return (0,)
    if value is False:
        return (1,)
    if value is True:
        return (2,)
    if isinstance(value, (int, float)):
        return (3, value)
    if isinstance(value, str):
        return (4, value.encode("utf-16-be"))
    return (5,)


def _index_of(order_by: str, key: str, child: Any) -> Any:
    if order_by == "$key":
        return key
    if order_by == "$value":
        return child
    return get_in(child, split_path(order_by))


def select(
    node: Any,
    order_by: str,
    start_at: Any = None,
    end_at: Any = None,
    equal_to: Any = None,
    limit_to_first: int | None = None,
    limit_to_last: int | None = None,
) -> list[tuple[str, Any]]:
    """The (key, stored child) pairs a query keeps, in query order."""
    _check(order_by, start_at, end_at, equal_to, limit_to_first, limit_to_last)
    if not isinstance(node, dict):
        return []
    if equal_to is not None:
        start_at = end_at = equal_to
    rank = key_order if order_by == "$key" else value_order
    items = sorted(
        node.items(), key=lambda kv: (rank(_index_of(order_by, kv[0], kv[1])), key_order(kv[0]))
    )
    kept = [
        (k, v)
        for k, v in items
        if (start_at is None or rank(_index_of(order_by, k, v)) >= rank(start_at))
        and (end_at is None or rank(_index_of(order_by, k, v)) <= rank(end_at))
    ]
    if limit_to_first is not None:
        kept = kept[:limit_to_first]
    if limit_to_last is not None:
        kept = kept[-limit_to_last:]
    return kept


def _check(
    order_by: str,
    start_at: Any,
    end_at: Any,
    equal_to: Any,
    limit_to_first: int | None,
    limit_to_last: int | None,
) -> None:
    if not order_by or (order_by.startswith("$") and order_by not in ("$key", "$value")):
        raise DatabaseError(f"order_by must be '$key', '$value' or a child path, not {order_by!r}")
    if limit_to_first is not None and limit_to_last is not None:
        raise DatabaseError("give limit_to_first or limit_to_last, not both")
    for limit in (limit_to_first, limit_to_last):
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise DatabaseError(f"a query limit must be an integer >= 1, not {limit!r}")
    if equal_to is not None and (start_at is not None or end_at is not None):
        raise DatabaseError("equal_to cannot be combined with start_at or end_at")
    for bound in (start_at, end_at, equal_to):
        if isinstance(bound, (dict, list)):
            raise DatabaseError("query bounds must be JSON primitives")
        if order_by == "$key" and bound is not None and not isinstance(bound, str):
            raise DatabaseError("with order_by='$key' the bounds must be strings")
