"""Queries over many children stay exact while building full sort keys only for the children
that can be in the answer (the server answers them on its one thread)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.localdb.query import parse_query
from atmosphere.rtdb import query as query_module
from atmosphere.rtdb.order import MAX_KEY as _MAX_KEY
from atmosphere.rtdb.order import MIN_KEY as _MIN_KEY
from atmosphere.rtdb.order import key_order, value_order
from atmosphere.rtdb.pushid import PushIdGenerator
from atmosphere.rtdb.query import (
    Bound,
    Query,
    _bound_key,
    _index_of,
    _priority_order,
    run_query,
)


def reference(q: Query, node: Any) -> Any:
    """The plain definition: every child keyed, filtered by the bounds, sorted, cut."""
    if type(node) is not dict or ".value" in node:
        return None
    items = [(k, v) for k, v in node.items() if k != ".priority"]
    if q.order_by == "$key":
        keyed = [(key_order(k), k, v) for k, v in items]
        lo = key_order(q.start.value) if q.start else None
        hi = key_order(q.end.value) if q.end else None
    else:
        rank = _priority_order if q.order_by == "$priority" else value_order
        keyed = [(rank(_index_of(q, v, q.child_path)) + key_order(k), k, v) for k, v in items]
        lo = _bound_key(q.start, rank, _MIN_KEY) if q.start else None
        hi = _bound_key(q.end, rank, _MAX_KEY) if q.end else None
    keyed = [e for e in keyed if (lo is None or e[0] >= lo) and (hi is None or e[0] <= hi)]
    keyed.sort(key=lambda e: e[0])
    if q.limit_first is not None:
        keyed = keyed[: q.limit_first]
    elif q.limit_last is not None:
        keyed = keyed[-q.limit_last :]
    return {k: v for _, k, v in keyed}


child_keys = st.one_of(
    st.integers(-50, 50).map(str),
    st.sampled_from(["007", "-0", "2147483648", "a", "b", "ab", "Z", "-Mk3abcdefghijklmno"]),
    st.text(alphabet="-abAB01", min_size=13, max_size=20),
)
primitives = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, -2.5]),
    st.sampled_from(["", "a", "b", "ab"]),
)
field_values = st.one_of(
    primitives,
    primitives.filter(lambda v: v is not None).map(lambda v: {".value": v, ".priority": 1}),
    st.just({"x": 1}),
)
children = st.dictionaries(
    child_keys,
    st.one_of(
        primitives.filter(lambda v: v is not None),
        st.fixed_dictionaries(
            {}, optional={"f": field_values, "g": st.fixed_dictionaries({"h": primitives})}
        ),
    ),
    max_size=25,
)
bounds = st.one_of(
    primitives.map(Bound),
    st.tuples(primitives, child_keys).map(lambda t: Bound(t[0], t[1])),
)
key_bounds = st.sampled_from(["", "0", "1", "10", "a", "ab", "-M", "-Mk3", "zz"]).map(Bound)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    order_by = draw(st.sampled_from(["f", "g/h", "$value", "$key"]))
    pool = key_bounds if order_by == "$key" else bounds
    start = draw(st.none() | pool)
    end = draw(st.none() | pool)
    if draw(st.booleans()) and order_by != "$key":
        start = end = draw(bounds)  # equalTo
    first = draw(st.none() | st.integers(1, 8))
    last = None if first is not None else draw(st.none() | st.integers(1, 8))
    return Query(order_by, start, end, first, last)


@settings(max_examples=400, deadline=None)
@given(queries(), children)
def test_answers_exactly_as_the_plain_definition(q: Query, node: dict[str, Any]) -> None:
    got = run_query(q, node)
    want = reference(q, node)
    assert got == want
    assert list(got) == list(want)  # the same order, too


def _jobs(n: int) -> dict[str, Any]:
    ids = PushIdGenerator()
    return {
        ids.next(): {"type": "work", "state": "succeeded", "finished": 1_000 + i} for i in range(n)
    }


@pytest.mark.parametrize(
    ("params", "answered", "most"),
    [
        # the dispatcher's retention page, everything expired: the 500 oldest
        (
            {"orderBy": '"finished"', "startAt": "0", "endAt": "99999", "limitToFirst": "500"},
            500,
            1_000,
        ),
        # a job's children (none) and a failed-jobs search (none)
        ({"orderBy": '"parent"', "equalTo": '"x"', "limitToFirst": "200"}, 0, 0),
        ({"orderBy": '"state"', "equalTo": '"failed"', "limitToLast": "51"}, 0, 0),
        # the newest page by key
        ({"orderBy": '"$key"', "limitToLast": "51"}, 51, 100),
    ],
)
def test_sort_keys_are_built_only_near_the_answer(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, str], answered: int, most: int
) -> None:
    calls = [0]

    def counted(key: str) -> tuple[Any, ...]:
        calls[0] += 1
        return key_order(key)

    node = _jobs(20_000)
    q = parse_query(params)
    assert q is not None
    monkeypatch.setattr(query_module, "key_order", counted)
    assert len(run_query(q, node)) == answered
    assert calls[0] <= most  # the plain definition builds one for each of the 20,000
