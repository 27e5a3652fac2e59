"""Crashes and shutdowns with real processes: kill -9 mid-job, SIGTERM drain."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atmosphere import Atmosphere, Handle
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until

pytestmark = pytest.mark.slow


def record(maker: Atmosphere, job_id: str) -> Any:
    return maker.database.get(f"{ROOT}/jobs/{job_id}") or {}


def stored_result(job: Any) -> Any:
    """A record's result (encoded as ``result_json``, or plain)."""
    text = job.get("result_json")
    return json.loads(text) if isinstance(text, str) else job.get("result")


def submit_gated(maker: Atmosphere, tmp_path: Path) -> tuple[Path, Handle, list[Any]]:
    """A job that runs until the gate file exists; its responses are collected in the list."""
    gate = tmp_path / "open"
    responses: list[Any] = []
    handle = maker.tasks["gate"].submit(
        data=str(gate), timeout=60, callback=lambda e, d: responses.append((e, d))
    )
    return gate, handle, responses


def test_kill_9_mid_job_requeues_it_to_another_cloud_with_one_response(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    tmp_path: Path,
) -> None:
    first = start_cloud(name="first")
    gate, handle, responses = submit_gated(maker, tmp_path)
    wait_until(
        lambda: maker.database.get(f"{ROOT}/live/clouds/{first.cloud_id}/running") == 1,
        20,
        "the first cloud runs the job",
    )
    second = start_cloud(name="second")
    first.kill()
    gate.touch()
    result = handle.get()
    assert result["pid"] == second.pid
    assert record(maker, handle.id)["cloud"] == second.cloud_id
    wait_until(lambda: responses, 5, "callback")
    assert len(responses) == 1 and responses[0][0] is None
    # The dead cloud is gone from the registry.
    assert maker.database.get(f"{ROOT}/live/clouds/{first.cloud_id}") is None


def test_sigterm_finishes_the_running_job_and_deregisters(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    tmp_path: Path,
) -> None:
    cloud = start_cloud()
    gate = tmp_path / "open"
    handle = maker.tasks["gate"].submit(data=str(gate), timeout=60)
    wait_until(
        lambda: maker.database.get(f"{ROOT}/live/clouds/{cloud.cloud_id}/running") == 1,
        20,
        "the cloud runs the job",
    )
    cloud.proc.send_signal(signal.SIGTERM)
    wait_until(
        lambda: maker.database.get(f"{ROOT}/live/clouds/{cloud.cloud_id}/state") == "draining",
        20,
        "draining",
    )
    assert not handle.done()
    gate.touch()
    assert handle.get()["pid"] == cloud.pid
    assert cloud.proc.wait(20) == 0
    assert maker.database.get(f"{ROOT}/live/clouds/{cloud.cloud_id}") is None
    assert maker.database.get(f"{ROOT}/live/inbox/{cloud.cloud_id}") is None


def test_jobs_wait_for_a_cloud_and_run_when_one_comes(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    handles = [maker.tasks["echo"].submit(data=i, timeout=60) for i in range(5)]
    assert maker.maker.flush(10)  # submit() returns before the outbox writes
    assert not any(h.done() for h in handles)
    assert record(maker, handles[0].id)["state"] == "queued"
    start_cloud(concurrency=2)
    assert [h.get()["echo"] for h in handles] == [0, 1, 2, 3, 4]


def test_sigterm_hands_back_a_prefetched_job_which_runs_elsewhere(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    tmp_path: Path,
) -> None:
    first = start_cloud(name="first", extra_args=["--prefetch", "1"])
    gate = tmp_path / "open"
    running = maker.tasks["gate"].submit(data=str(gate), timeout=60)
    waiting = maker.tasks["echo"].submit(data="w", timeout=60)
    wait_until(
        lambda: len(maker.database.get(f"{ROOT}/live/inbox/{first.cloud_id}") or {}) == 2,
        20,
        "both jobs assigned to the first cloud",
    )
    second = start_cloud(name="second")
    first.proc.send_signal(signal.SIGTERM)
    # Handed back at once, and run by the other cloud while the first still drains.
    assert waiting.get()["pid"] == second.pid
    assert not running.done() and first.proc.poll() is None
    gate.touch()
    assert running.get()["pid"] == first.pid  # finished during the drain
    assert first.proc.wait(20) == 0


def test_a_frozen_cloud_declared_dead_comes_back_re_registers_and_leaves_the_first_answer(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    tmp_path: Path,
) -> None:
    frozen = start_cloud(name="frozen")
    gate, handle, responses = submit_gated(maker, tmp_path)
    registry = f"{ROOT}/live/clouds"
    wait_until(
        lambda: maker.database.get(f"{registry}/{frozen.cloud_id}/running") == 1, 20, "running"
    )
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        other = start_cloud(name="other")
        wait_until(
            lambda: maker.database.get(f"{registry}/{frozen.cloud_id}") is None, 20, "declared dead"
        )
        gate.touch()
        assert handle.get()["pid"] == other.pid  # requeued and run by the other cloud
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    # Awake again, it finishes its stale attempt and re-registers with its next write.
    wait_until(lambda: maker.database.get(f"{registry}/{frozen.cloud_id}"), 20, "re-registered")
    wait_until(lambda: responses, 5, "callback")
    assert len(responses) == 1 and responses[0][1]["pid"] == other.pid
    # Its completion wrote the record too; the dispatcher records that finish as late and, in
    # the same update, puts back the first one, the answer the caller got (issue 8, finding 6).
    wait_until(
        lambda: f"{frozen.cloud_id}-1" in (record(maker, handle.id).get("late") or {}),
        20,
        "the frozen cloud's finish recorded as late",
    )
    job = record(maker, handle.id)
    assert stored_result(job)["pid"] == other.pid and job["cloud"] == other.cloud_id
    assert job["state"] == "succeeded"
