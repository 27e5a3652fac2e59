"""Poison chains with real processes: the embedded server, ``atmosphere dispatcher`` and
``atmosphere cloud`` (tests.integration.poison_tasks).

A chain step's result that the database takes in the outcome but not one level deeper, in the
next step's queue entry (issue 8, finding 2): before the fix the dispatcher's batched write was
refused and rebuilt forever, and no job of any type was assigned again. A fire-and-forget
chain's failure (finding 7) was logged nowhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from atmosphere import Atmosphere, JobError, JobFailed
from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.rtdb.values import MAX_DEPTH
from atmosphere.storable import depth_of
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until
from tests.integration.poison_tasks import nested

pytestmark = pytest.mark.slow

TASKS = "tests.integration.poison_tasks"
TIMEOUT = 30.0
# As deep as the outcome's result may nest: the cloud's write is accepted, the cascade's is not.
DEPTH = MAX_DEPTH - depth_of(f"{Paths(ROOT).outcomes('x')}/result")
POISONS = 3
ORDINARY = 30
# Job data stored as JSON text (``data_json``) cannot nest too deep; stored as a tree, it can.
DATA_AS_TEXT = "data_json" in JobSpec(id="x", type="t", name="n", data=1).to_json()


def test_a_chain_step_too_deep_to_pass_on_answers_once_while_other_jobs_flow(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud(TASKS, concurrency=2)
    answers: list[tuple[JobError | None, Any]] = []
    all_answered = threading.Event()

    def callback(error: JobError | None, data: Any) -> None:
        answers.append((error, data))
        if len(answers) >= POISONS:
            all_answered.set()

    echo = maker.tasks["echo"]
    chains: list[str] = []
    handles = []
    for i in range(ORDINARY):  # the poison chains go out among ordinary jobs
        handles.append(echo.submit(i, timeout=TIMEOUT))
        if i % (ORDINARY // POISONS) == 0:
            steps: list[dict[str, Any]] = [
                {"type": "nest", "data": DEPTH, "timeout": TIMEOUT},
                {"type": "echo"},
            ]
            chains.append(maker.submit(steps, callback).id)
    assert [h.get()["echo"] for h in handles] == list(range(ORDINARY))
    assert all_answered.wait(TIMEOUT), answers
    # After the poison, ordinary jobs still flow, and no chain was answered a second time.
    assert echo.submit("after", timeout=TIMEOUT).get()["echo"] == "after"
    assert len(answers) == POISONS
    if DATA_AS_TEXT:  # nothing for the database to refuse: the result reached the next step
        assert all(e is None and d["echo"]["nest"] == nested(DEPTH) for e, d in answers)
        return
    assert sorted(str(e.job_id) for e, _ in answers if e) == sorted(f"{c}-0" for c in chains)
    for error, data in answers:
        assert isinstance(error, JobFailed) and data is None
        chain_id = str(error.job_id).removesuffix("-0")
        assert "cannot be passed on to step 1 (echo)" in str(error)
        assert f"data is nested {DEPTH + 1} levels deep" in str(error)
        record = maker.database.get(f"{ROOT}/jobs/{chain_id}-0")
        assert record["state"] == "failed" and record["error"]["kind"] == "InvalidResult"
        assert maker.database.get(f"{ROOT}/jobs/{chain_id}-1") is None
        assert maker.database.get(f"{ROOT}/live/chains/{chain_id}") is None


def test_a_fire_and_forget_chain_failure_is_logged_by_the_dispatcher(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud(TASKS)
    steps: list[dict[str, Any]] = [
        {"type": "s1", "timeout": TIMEOUT},
        {"type": "boom", "data": "ff"},
        {"type": "s3"},
    ]
    handle = maker.submit(steps)  # no callback: nobody waits
    line = f"chain {handle.id} ({handle.id}) failed at step 1 of 3 (boom, job {handle.id}-1)"
    wait_until(lambda: line in dispatcher.log, TIMEOUT, "the failure in the dispatcher's log")
    assert "WARNING" in dispatcher.log.split(line)[0].rsplit("\n", 1)[-1]
    assert "no caller will hear of it: ValueError: boom: {'data': 'ff'" in dispatcher.log
    record = maker.database.get(f"{ROOT}/jobs/{handle.id}-1")
    assert record["state"] == "failed" and "boom: {'data': 'ff'" in record["error"]["message"]
    assert maker.database.get(f"{ROOT}/jobs/{handle.id}-2") is None
