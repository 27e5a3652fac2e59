"""Chains with real processes: data cascade, callback mid-chain, error mid-chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from atmosphere import Atmosphere, JobFailed, chain
from atmosphere.jobs import payload
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until

pytestmark = pytest.mark.slow


def state(maker: Atmosphere, job_id: str) -> Any:
    return maker.database.get(f"{ROOT}/jobs/{job_id}/state")


def test_five_job_chain_cascades_data(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    t = maker.tasks
    handle = chain(
        t["s1"].s({"p1": "initial"}, name="job1", timeout=30),
        t["s2"].s({"p2": 2}),
        t["s3"].s({"p3": 3}),
        t["s4"].s({"p4": 4}),
        t["s5"].s({"p5": 5}),
    ).submit()
    result = handle.get()
    # Step k+1 runs with its own data merged with {<type of step k>: <result of step k>}.
    expected: Any = {"step": 1, "name": "job1", "got": {"p1": "initial"}}
    for k in range(2, 6):
        expected = {"step": k, "name": "job1", "got": {f"p{k}": k, f"s{k - 1}": expected}}
    assert result == expected
    assert [state(maker, f"{handle.id}-{k}") for k in range(5)] == ["succeeded"] * 5


def test_original_form_chain_with_a_callback(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    got: list[Any] = []
    handle = maker.submit(
        [
            {"type": "s1", "name": "special job", "data": {"msg": "useful"}, "timeout": 30},
            {"type": "s2", "data": {"param2": "abc"}},
        ],
        lambda error, data: got.append((error, data)),
    )
    result = handle.get()
    assert result["got"] == {
        "param2": "abc",
        "s1": {"step": 1, "name": "special job", "got": {"msg": "useful"}},
    }
    wait_until(lambda: got, 5, "callback")
    assert got == [(None, result)]


def test_callback_mid_chain_answers_early_and_the_chain_goes_on(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    t = maker.tasks
    handle = chain(
        t["s1"].s({"a": 1}, timeout=30), t["s2"].s({"b": 2}, callback=True), t["s3"].s({"c": 3})
    ).submit()
    result = handle.get()
    assert result["step"] == 2 and result["got"]["b"] == 2
    wait_until(lambda: state(maker, f"{handle.id}-2") == "succeeded", 20, "step 3 ran")
    last = payload(maker.database.get(f"{ROOT}/jobs/{handle.id}-2"), "result")
    assert last["got"]["s2"] == result  # the chain went on with step 2's result


def test_an_error_mid_chain_stops_it_and_answers_at_once(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    t = maker.tasks
    handle = chain(t["s1"].s(1, timeout=30), t["boom"].s("mid"), t["s3"].s(3)).submit()
    with pytest.raises(JobFailed, match="boom") as info:
        handle.get()
    assert info.value.job_id == f"{handle.id}-1"
    assert state(maker, f"{handle.id}-1") == "failed"
    assert maker.database.get(f"{ROOT}/jobs/{handle.id}-2") is None
