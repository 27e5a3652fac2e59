"""The one decision of a cloud's condition (dead, draining, busy, idle), from a table."""

from __future__ import annotations

import pytest

from atmosphere.cloud_state import CloudState, cloud_state


@pytest.mark.parametrize(
    ("age", "draining", "held", "capacity", "expected"),
    [
        (1.0, False, 0, 1, CloudState.IDLE),
        (1.0, False, 1, 2, CloudState.IDLE),  # a free slot left: routing may still use it
        (1.0, False, 2, 2, CloudState.BUSY),
        (1.0, False, 3, 2, CloudState.BUSY),  # over capacity after slots were taken back
        (1.0, False, 0, 0, CloudState.BUSY),  # no room at all
        (1.0, True, 0, 1, CloudState.DRAINING),
        (1.0, True, 1, 1, CloudState.DRAINING),
        (6.0, False, 0, 1, CloudState.IDLE),  # exactly dead_after: not yet dead
        (6.1, True, 1, 1, CloudState.DEAD),
        (None, False, 0, 1, CloudState.DEAD),  # never heard from
        (float("inf"), False, 0, 1, CloudState.DEAD),
    ],
)
def test_cloud_state(
    age: float | None, draining: bool, held: int, capacity: int, expected: CloudState
) -> None:
    state = cloud_state(
        heartbeat_age=age, dead_after=6.0, draining=draining, held=held, capacity=capacity
    )
    assert state is expected
