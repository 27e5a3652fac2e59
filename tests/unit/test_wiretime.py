"""Time on the wire (``wiretime.py``): seconds in Python, integer milliseconds in the database,
converted in one place, and every wire time survives the trip unchanged."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.wiretime import from_ms, parse_ms, render_ms, to_ms

# Epoch milliseconds up to the year 2286, and a little before 1970 (clock skew in tests).
wire_ms = st.integers(min_value=-(10**12), max_value=10**13)
seconds = st.floats(min_value=-(10**9), max_value=10**10, allow_nan=False)


@given(wire_ms)
def test_a_wire_time_renders_back_to_the_same_integer(ms: int) -> None:
    # Given a timestamp read from the database, when Python hands it back,
    # I expect the very integer that was stored (tick ids and fencing compare them exactly).
    assert to_ms(from_ms(ms)) == ms


@given(wire_ms)
def test_a_stored_positive_time_parses_and_renders_unchanged(ms: int) -> None:
    parsed = parse_ms(ms)
    if ms <= 0:
        assert parsed is None
    else:
        assert parsed is not None and render_ms(parsed) == ms


@given(seconds)
def test_seconds_render_to_the_nearest_millisecond(value: float) -> None:
    ms = to_ms(value)
    assert isinstance(ms, int)
    assert math.isclose(from_ms(ms), value, abs_tol=0.0005 + 1e-9 * abs(value))
    assert to_ms(from_ms(ms)) == ms


def test_what_is_not_a_timestamp_parses_as_absent() -> None:
    for value in (None, True, False, "1700000000000", {"a": 1}, 0, -5):
        assert parse_ms(value) is None
    assert parse_ms(1_700_000_000_123) == 1_700_000_000.123
    assert render_ms(None) is None
    assert to_ms(1.2345) == 1234 and to_ms(1.2346) == 1235
