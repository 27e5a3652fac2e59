"""Recursion with real processes: a handler waits on sub-jobs on the same exclusive cloud."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atmosphere import Atmosphere
from tests.integration.conftest import CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess

pytestmark = pytest.mark.slow


def test_recursion_three_deep_on_one_exclusive_cloud(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    cloud = start_cloud(concurrency=1)  # r1 -> r2 -> r3, every type on this one cloud
    result = maker.tasks["r1"].submit(data="deep", timeout=30).get()
    assert result == {"r1": {"r2": {"r3": "deep", "pid": cloud.pid}}}
    # And again, so lent slots were given back and the cloud is usable.
    assert maker.tasks["r1"].submit(data=2, timeout=30).get()["r1"]["r2"]["r3"] == 2
