"""The dispatcher's timers: earliest first, ties in the order added, none early."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.scheduler.timers import Timers


@given(
    st.lists(st.tuples(st.integers(0, 20), st.text(max_size=3)), max_size=40), st.integers(0, 20)
)
def test_due_timers_come_earliest_first_ties_in_order_added(
    entries: list[tuple[int, str]], now: int
) -> None:
    timers = Timers()
    for n, (when, key) in enumerate(entries):
        timers.add(float(when), f"kind{n}", key)
    due = list(timers.pop_due(float(now)))
    expected = sorted(
        ((when, n, key) for n, (when, key) in enumerate(entries) if when <= now),
    )
    assert due == [(f"kind{n}", key) for _, n, key in expected]
    later = [when for when, _ in entries if when > now]
    assert timers.next_due() == (min(later) if later else math.inf)


def test_a_timer_added_while_popping_comes_too_when_already_due() -> None:
    timers = Timers()
    timers.add(1.0, "resync")
    seen = []
    for kind, _ in timers.pop_due(5.0):
        seen.append(kind)
        if kind == "resync":
            timers.add(2.0, "again")  # due by now: same round
            timers.add(9.0, "later")  # not yet
    assert seen == ["resync", "again"]
    assert timers.next_due() == 9.0
