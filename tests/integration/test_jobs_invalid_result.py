"""Results the database would refuse (issue 8, finding 3), with real processes: the embedded
server, ``atmosphere dispatcher`` and ``atmosphere cloud`` (tests.integration.result_tasks).

Before the fix the cloud retried such a completion forever: the caller timed out, the job was
never failed and the cloud's slot stayed held, so the next job never ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from atmosphere import Atmosphere, InvalidResult
from tests.integration import result_tasks
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess

pytestmark = pytest.mark.slow

TASKS = "tests.integration.result_tasks"
TIMEOUT = 30.0  # the job's own deadline: an answer must come well before it
PROMPT = 15.0


def test_a_result_the_database_would_refuse_fails_the_job_and_frees_the_slot(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
) -> None:
    # The result travels as JSON text: 12,000,000 characters and two quotes.
    job_type, message = "huge", r"result holds a string of 12000002 bytes"
    cloud = start_cloud(TASKS)
    began = time.monotonic()
    handle = maker.submit({"type": job_type, "timeout": TIMEOUT}, lambda error, data: None)
    with pytest.raises(InvalidResult, match=message) as info:
        handle.get()
    assert time.monotonic() - began < PROMPT
    assert info.value.job_id == handle.id
    record = maker.database.get(f"{ROOT}/jobs/{handle.id}")
    assert record["state"] == "failed" and record["error"]["kind"] == "InvalidResult"
    assert "result" not in record
    # The one exclusive slot was freed: an ordinary job on the same cloud runs.
    result = maker.tasks["echo"].submit(data="next", timeout=TIMEOUT).get()
    assert result["echo"] == "next" and result["pid"] == cloud.pid


@pytest.mark.parametrize(
    ("job_type", "expected"),
    [("deep", result_tasks.nested(result_tasks.DEPTH)), ("dotted", {"ok": 1, "a.b": 2})],
)
def test_results_a_firebase_tree_could_not_hold_come_back_intact(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    job_type: str,
    expected: object,
) -> None:
    # Results travel as JSON text (issue 10, item 4): 40 levels and dotted keys are no poison.
    start_cloud(TASKS)
    handle = maker.submit({"type": job_type, "timeout": TIMEOUT}, lambda error, data: None)
    assert handle.get() == expected
    assert maker.database.get(f"{ROOT}/jobs/{handle.id}")["state"] == "succeeded"
