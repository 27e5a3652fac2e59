"""A query given as the client's arguments, run by Firebase's rules (``atmosphere.rtdb``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from atmosphere.errors import DatabaseError
from atmosphere.rtdb.keys import split_path
from atmosphere.rtdb.query import Bound, Query, run_query


def select(
    node: Any,
    order_by: str,
    start_at: Any = None,
    end_at: Any = None,
    equal_to: Any = None,
    limit_to_first: int | None = None,
    limit_to_last: int | None = None,
) -> list[tuple[str, Any]]:
    """The (key, stored child) pairs a query keeps, in query order; DatabaseError for a query
    Firebase would refuse (checked even when ``node`` is None)."""
    _check(order_by, start_at, end_at, equal_to, limit_to_first, limit_to_last)
    if equal_to is not None:
        start_at = end_at = equal_to
    if not order_by.startswith("$"):
        order_by = "/".join(split_path(order_by))
    query = Query(
        order_by,
        None if start_at is None else Bound(start_at),
        None if end_at is None else Bound(end_at),
        limit_to_first,
        limit_to_last,
    )
    kept = run_query(query, node)
    return list(kept.items()) if kept else []


def query_string(
    order_by: str,
    start_at: Any = None,
    end_at: Any = None,
    equal_to: Any = None,
    limit_to_first: int | None = None,
    limit_to_last: int | None = None,
) -> str:
    """The REST query parameters of a checked query, as firebase-admin sends them (sorted
    names, JSON values) but fully percent-encoded, so ``+``, ``&`` and ``#`` in a bound
    arrive intact."""
    if not order_by.startswith("$"):
        order_by = "/".join(split_path(order_by))
    params: dict[str, Any] = {"orderBy": order_by}
    bounds = {"startAt": start_at, "endAt": end_at, "equalTo": equal_to}
    params.update({k: v for k, v in bounds.items() if v is not None})
    encoded = {k: json.dumps(v) for k, v in params.items()}
    for name, limit in (("limitToFirst", limit_to_first), ("limitToLast", limit_to_last)):
        if limit is not None:
            encoded[name] = str(limit)
    return "&".join(f"{k}={quote(encoded[k], safe='')}" for k in sorted(encoded))


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
