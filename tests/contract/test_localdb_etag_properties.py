"""A conditional write carrying the server's own ETag always succeeds, for every JSON value.

The lease, schedules and the station's retries are compare-and-set writes: one value whose ETag
the server refuses would wedge them for good (issue 8, finding 1: a base64 tag that happens to
start with ``W/`` was read as a weak tag and stripped, one value in 4,096).
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from atmosphere.localdb.messages import strip_etag
from atmosphere.rtdb import tree
from tests.support import RawClient

_FORBIDDEN_IN_KEYS = set(".$#[]/") | {chr(c) for c in range(0x20)} | {"\x7f"}

keys = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=_FORBIDDEN_IN_KEYS),
    min_size=1,
    max_size=12,
)
leaves = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=30,
)


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {f"k{i}": value}
    return value


deep_values = st.builds(_nested, st.integers(min_value=1, max_value=28), leaves)

_paths = (f"/p{n}" for n in itertools.count())
_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _etag(raw: RawClient, path: str) -> str:
    r = raw.get(path, headers={"X-Firebase-ETag": "true"})
    assert r.status_code == 200, r.text
    etag: str = r.headers["ETag"]
    return etag


def _own_tag_round_trip(raw: RawClient, value: Any) -> None:
    path = next(_paths) + ".json"
    first = raw.put(path, value, headers={"X-Firebase-ETag": "true"})
    assume(first.status_code == 200)  # values the database refuses are another test's business
    tag = _etag(raw, path)
    assert first.headers["ETag"] == tag, "the ETag a PUT answers must be the one a read gives"
    again = raw.put(path, {"next": 1}, headers={"if-match": tag})
    assert again.status_code == 200, f"412 to the server's own ETag {tag!r} for {value!r}"
    assert raw.get(path).json() == {"next": 1}


@_SETTINGS
@given(value=json_values)
def test_own_etag_always_matches(raw: RawClient, value: Any) -> None:
    _own_tag_round_trip(raw, value)


@_SETTINGS
@given(value=deep_values)
def test_own_etag_always_matches_deeply_nested(raw: RawClient, value: Any) -> None:
    _own_tag_round_trip(raw, value)


def _value_whose_tag_starts_with_weak_prefix() -> dict[str, Any]:
    # One lease-shaped value in about 4,096 has such a tag; search rather than hard-code one.
    for epoch in range(200_000):
        value = {"owner": "host-1", "epoch": epoch, "expires": 1_700_000_000_000}
        if tree.etag(value).startswith("W/"):
            return value
    raise AssertionError("no value with a W/ tag found")


def test_a_tag_that_begins_with_w_slash_is_not_taken_for_a_weak_one(
    raw: RawClient, sdk_db: Callable[[str], Any]
) -> None:
    value = _value_whose_tag_starts_with_weak_prefix()
    raw.put("/lease.json", value)
    tag = _etag(raw, "/lease.json")
    assert tag.startswith("W/")
    r = raw.put("/lease.json", {"epoch": 1}, headers={"if-match": tag})
    assert r.status_code == 200
    # and through firebase-admin's own transaction, as the election runs it
    raw.put("/lease.json", value)
    assert sdk_db("lease").transaction(lambda v: {**v, "epoch": v["epoch"] + 1})["epoch"] == (
        value["epoch"] + 1
    )
    assert raw.get("/lease.json").json()["epoch"] == value["epoch"] + 1


@given(st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=30))
def test_strip_etag_keeps_bare_tags_and_unwraps_quoted_and_weak_ones(tag: str) -> None:
    assert strip_etag(tag) == tag
    assert strip_etag(f'"{tag}"') == tag
    assert strip_etag(f'W/"{tag}"') == tag
    assert strip_etag(f"  {tag} ") == tag


def test_etag_is_stable_for_key_order() -> None:
    a = orjson.loads(b'{"a": 1, "b": {"x": 2, "y": 3}}')
    b = orjson.loads(b'{"b": {"y": 3, "x": 2}, "a": 1}')
    assert tree.etag(a) == tree.etag(b)
