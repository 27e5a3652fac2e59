"""jobs.decode_json: orjson's speed, the stdlib's values (big integers, lone surrogates, NaN)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.jobs import InvalidRecord, JobSpec, decode_json


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0, NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # NaN and infinities: written by the stdlib, read back by both
    | st.text()  # lone surrogates too
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=_values, ascii_only=st.booleans(), compact=st.booleans())
def test_reads_what_json_loads_reads(value: Any, ascii_only: bool, compact: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
    assert same(decode_json(text), json.loads(text))


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=30) | st.from_regex(r"\A[\[\]{}\",:0-9eE.+\- tfnrulasNIinfy\\u]*\Z"))
def test_arbitrary_text_is_read_or_refused_as_json_loads_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(InvalidRecord):
            decode_json(text)
        return
    except RecursionError:
        return
    assert same(decode_json(text), expected)


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",
        "-9223372036854775809",
        '"\\ud800"',
        "NaN",
        "-Infinity",
        "1e400",
        '{"a":1,"a":2}',
        "-0",
    ],
)
def test_the_cases_where_orjson_alone_would_differ(text: str) -> None:
    assert same(decode_json(text), json.loads(text))


def test_a_jobs_data_decodes_as_before() -> None:
    raw = {
        "id": "j1",
        "type": "t",
        "data_json": '[18446744073709551616, "\\udc80", 1.5, {"k": null}]',
    }
    assert same(JobSpec.from_json(raw).data, [18446744073709551616, "\udc80", 1.5, {"k": None}])
    with pytest.raises(InvalidRecord, match="data_json is not JSON"):
        JobSpec.from_json({**raw, "data_json": "[1,"})
