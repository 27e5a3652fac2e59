"""Time on the wire (``wiretime.py``): seconds in Python, integer milliseconds in the database,
converted in one place, and every wire time survives the trip unchanged."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.jobs import ChainState, JobSpec, Outcome
from atmosphere.presence import CloudInfo, DispatcherInfo
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


@given(st.integers(min_value=1, max_value=10**13), st.integers(min_value=1, max_value=10**13))
def test_the_records_parse_seconds_and_render_the_same_ms(a: int, b: int) -> None:
    # Given records as the database holds them (integer ms), when a process parses one and
    # writes it on (the dispatcher moves a job from queue to inbox), I expect the same integers.
    job = {"id": "j", "type": "t", "name": "n", "timeout": 5.0, "attempt": 1}
    job |= {"submitted": a, "eta": b, "assigned": a}
    spec = JobSpec.from_json(job)
    assert (spec.submitted, spec.eta) == (a / 1000, b / 1000)
    assert spec.to_json() == job
    outcome = {"cloud": "c", "attempt": 1, "ok": True, "started": a, "finished": b}
    assert Outcome.from_json(outcome, "j").to_json() == outcome
    cloud = {"types": {"t": True}, "heartbeat": a, "started": b}
    info = CloudInfo.from_json(cloud, "c")
    assert (info.heartbeat, info.started) == (a / 1000, b / 1000)
    assert {k: info.to_json()[k] for k in ("heartbeat", "started")} == {
        "heartbeat": a,
        "started": b,
    }
    chain = {"name": "c", "steps": [{"type": "t"}], "timeout": 5.0, "step": 0, "submitted": a}
    assert ChainState.from_json(chain, "c").to_json() == chain


@given(
    st.integers(min_value=1, max_value=10**13),
    st.integers(min_value=1, max_value=10**13),
    st.sampled_from(["leader", "standby"]),
    st.none() | st.integers(min_value=1, max_value=10**6),
    st.none() | st.text(min_size=1, max_size=12),
)
def test_a_dispatchers_presence_parses_seconds_and_renders_the_same_ms(
    a: int, b: int, role: str, epoch: int | None, seq: str | None
) -> None:
    # Given a presence record as live/dispatchers holds it (integer ms),
    raw: dict[str, object] = {"host": "h", "pid": 7, "role": role, "started": a, "heartbeat": b}
    raw |= {k: v for k, v in (("epoch", epoch), ("seq", seq)) if v is not None}
    # when a reader parses it, I expect seconds, and the same record when it is written back.
    info = DispatcherInfo.from_json(raw, "d")
    assert (info.started, info.heartbeat, info.leader) == (a / 1000, b / 1000, role == "leader")
    assert info.to_json() == raw
