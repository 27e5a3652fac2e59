"""Queries over a stored node: orderBy / startAt / endAt / equalTo / limits, in Firebase's
order (``order.py``). Parsing a query from a request is the server's business
(``atmosphere.localdb.query``); the client builds a ``Query`` from its arguments."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from .order import MAX_KEY, MIN_KEY, key_order, utf16_order, value_order


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
    lo = key_order(q.start.value) if q.start else None
    hi = key_order(q.end.value) if q.end else None
    maybe_ints, texts, ascii_texts = _split_keys(node)
    ints: list[tuple[tuple[Any, ...], str]] = []
    for k in maybe_ints:
        if k != ".priority":
            order = key_order(k)
            if order[0] == 0:
                ints.append((order, k))
            else:
                texts.append(k)
                ascii_texts = ascii_texts and k.isascii()
    ints = [e for e in ints if (lo is None or e[0] >= lo) and (hi is None or e[0] <= hi)]
    # ASCII keys (nearly all) compare as they are; others by UTF-16 code units.
    by = None if ascii_texts else utf16_order
    if hi is not None and hi[0] == 0:
        texts = []
    elif hi is not None:
        texts = [k for k in texts if (by(k) if by else k) <= hi[3]]
    if lo is not None and lo[0] == 1:
        texts = [k for k in texts if (by(k) if by else k) >= lo[3]]
    ints.sort()
    int_keys = [k for _, k in ints]
    if q.limit_first is not None:
        n = q.limit_first
        first = heapq.nsmallest(max(0, n - len(int_keys)), texts, key=by)
        return (int_keys + sorted(first, key=by))[:n]
    if q.limit_last is not None:
        # Not a heap: keys come in about the order they were written (push ids: time order),
        # which a heap's newest-so-far loop handles worst and timsort best.
        n = q.limit_last
        return (int_keys + sorted(texts, key=by)[-n:])[-n:]
    return int_keys + sorted(texts, key=by)


def _split_keys(node: dict[str, Any]) -> tuple[list[str], list[str], bool]:
    """(keys that may be int32-like, keys that cannot, whether the latter are all ASCII).

    A key over 11 characters is int32-like only with a leading zero ("0..." or "-0..."),
    which push ids never have: the long keys are checked at C speed, joined by a character no
    key may hold, and only when one might have a leading zero are they looked at one by one.
    """
    short = [k for k in node if len(k) <= 11]
    long = [k for k in node if len(k) > 11]
    joined = "\x00" + "\x00".join(long)
    if "\x000" in joined or "\x00-0" in joined:
        zeros = {k for k in long if k[0] == "0" or k.startswith("-0")}
        short += zeros
        long = [k for k in long if k not in zeros]
    return short, long, joined.isascii()


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
        lo, hi = utf16_order(lo), utf16_order(hi)
        found = [(u, k) for v, k in pairs if type(v) is str and lo <= (u := utf16_order(v)) <= hi]
    else:
        found = [(v, k) for v, k in pairs if (type(v) is int or type(v) is float) and lo <= v <= hi]
    if q.start.key is not None or q.end.key is not None:
        start, end = (
            _bound_key(q.start, value_order, MIN_KEY),
            _bound_key(q.end, value_order, MAX_KEY),
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
    lo = _bound_key(q.start, rank, MIN_KEY) if q.start else None
    hi = _bound_key(q.end, rank, MAX_KEY) if q.end else None
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
