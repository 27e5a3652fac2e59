"""Firebase's order (atmosphere.rtdb.order) across the whole of Unicode, and the client
(``MemoryDatabase``) and the server (``LocalDb``) answering every query in the same order."""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atmosphere.localdb.service import LocalDb, Response
from atmosphere.rtdb.order import key_order, utf16_order, value_order
from atmosphere.testing import MemoryDatabase

OWNER = {b"authorization": b"Bearer owner"}
INT32_EDGES = [-(2**31) - 1, -(2**31), -1, 0, 1, 2**31 - 1, 2**31]
_ns = itertools.count()


def _units(text: str) -> bytes:
    return text.encode("utf-16-be")


def name_compare(a: str, b: str) -> int:
    """firebase-js-sdk packages/database/src/core/util/util.ts ``nameCompare``, transcribed."""

    def try_parse_int(s: str) -> int | None:
        if re.fullmatch(r"-?(0*)[0-9]{1,10}", s):
            n = int(s)
            if -(2**31) <= n <= 2**31 - 1:
                return n
        return None

    if a == b:
        return 0
    ai, bi = try_parse_int(a), try_parse_int(b)
    if ai is not None and bi is not None:
        return (ai - bi) or (len(a) - len(b))
    if ai is not None:
        return -1
    if bi is not None:
        return 1
    return -1 if _units(a) < _units(b) else 1  # JavaScript's < on strings: UTF-16 code units


int_keys = st.builds(
    lambda n, zeros, sign: ("-" if sign and n >= 0 else "") + "0" * zeros + str(n),
    st.one_of(st.sampled_from(INT32_EDGES), st.integers(-(10**11), 10**11)),
    st.integers(0, 3),
    st.booleans(),
)
# Every code point but the surrogates (no Python str from JSON holds one), astral ones included.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
keys = st.one_of(
    int_keys,
    any_text.filter(bool),
    st.text(st.sampled_from("0١-a\uffff\U0001f600\ue000\ud7ff"), min_size=1, max_size=4),
).filter(lambda k: not re.search(r"[\[\].#$/\x00-\x1f\x7f]", k))


@given(any_text, any_text)
def test_utf16_order_is_utf16_code_unit_order(a: str, b: str) -> None:
    assert (utf16_order(a) < utf16_order(b)) == (_units(a) < _units(b))
    assert (utf16_order(a) == utf16_order(b)) == (a == b)


@given(keys, keys)
def test_key_order_is_name_compare(a: str, b: str) -> None:
    expected = name_compare(a, b)
    got = (key_order(a) > key_order(b)) - (key_order(a) < key_order(b))
    assert got == (expected > 0) - (expected < 0)


@given(st.lists(keys, unique=True, max_size=12))
def test_sorting_by_key_order_is_sorting_by_name_compare(ks: list[str]) -> None:
    assert sorted(ks, key=key_order) == sorted(ks, key=functools.cmp_to_key(name_compare))


@given(any_text, any_text)
def test_string_values_order_by_utf16(a: str, b: str) -> None:
    assert (value_order(a) < value_order(b)) == (_units(a) < _units(b))


def test_values_order_across_types() -> None:
    ordered = [None, False, True, -1, 0.5, 2, "", "a", "\U0001f600", "\uffff", {"a": 1}]
    assert sorted(reversed(ordered), key=value_order) == ordered


# -- the client and the server agree -------------------------------------------------------

values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, -2.5]), any_text
)
children = st.dictionaries(
    keys, st.one_of(values, st.fixed_dictionaries({"v": values})), max_size=8
)
bound = st.one_of(st.none(), values)


def _server_query(db: LocalDb, ns: str, params: dict[str, Any]) -> list[str]:
    query = "&".join(f"{k}={quote(orjson.dumps(v).decode())}" for k, v in params.items())
    answer = db.handle("GET", b"/n.json", f"ns={ns}&{query}".encode(), OWNER, b"")
    assert isinstance(answer, Response) and answer.status == 200, answer
    found = orjson.loads(answer.body)
    if isinstance(found, list):  # an array-like answer: its keys are its indexes, in order
        return [str(i) for i, v in enumerate(found) if v is not None]
    return list(found or {})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    node=children,
    order_by=st.sampled_from(["$key", "$value", "v"]),
    start=bound,
    end=bound,
    limit=st.one_of(st.none(), st.integers(1, 4)),
    last=st.booleans(),
)
def test_the_client_and_the_server_answer_in_the_same_order(
    localdb: LocalDb,
    node: dict[str, Any],
    order_by: str,
    start: Any,
    end: Any,
    limit: int | None,
    last: bool,
) -> None:
    if order_by == "$key":  # key bounds are strings
        start = start if isinstance(start, str) else None
        end = end if isinstance(end, str) else None
    ns = f"order{next(_ns)}"
    body = orjson.dumps(node)
    put = localdb.handle("PUT", b"/n.json", f"ns={ns}".encode(), OWNER, body)
    assert isinstance(put, Response) and put.status == 200
    memory = MemoryDatabase()
    memory.set("n", node)
    params: dict[str, Any] = {"orderBy": order_by}
    kwargs: dict[str, Any] = {}
    for name, arg, value in (("startAt", "start_at", start), ("endAt", "end_at", end)):
        if value is not None:
            params[name] = kwargs[arg] = value
    if limit is not None:
        params["limitToLast" if last else "limitToFirst"] = limit
        kwargs["limit_to_last" if last else "limit_to_first"] = limit
    client = list(memory.query("n", order_by=order_by, **kwargs))
    memory.close()
    assert client == _server_query(localdb, ns, params)
