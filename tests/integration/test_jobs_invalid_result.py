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
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess

pytestmark = pytest.mark.slow

TASKS = "tests.integration.result_tasks"
TIMEOUT = 30.0  # the job's own deadline: an answer must come well before it
PROMPT = 15.0


@pytest.mark.parametrize(
    ("job_type", "message"),
    [
        ("deep", r"result is nested 40 levels deep \(at result\.a\.a"),
        ("dotted", r"key in result 'a\.b' contains '\.'"),
        ("huge", r"result holds a string of 12000000 bytes"),
    ],
)
def test_a_result_the_database_would_refuse_fails_the_job_and_frees_the_slot(
    dispatcher: DispatcherProcess,
    start_cloud: Callable[..., CloudProcess],
    maker: Atmosphere,
    job_type: str,
    message: str,
) -> None:
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
