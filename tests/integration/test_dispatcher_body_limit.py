"""A decision the real server refuses (HTTP 413) is isolated from the dispatcher's batch (issue 8,
finding 2), with real processes on a server whose body limit is small.

A chain step's result fits in the cloud's completion, but the next step's record and queue entry,
each holding that result beside the step's own data, are over the limit in one update. Nothing
checks that before sending: the server itself refuses it. Before the fix the dispatcher resynced
and rebuilt the same batch forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atmosphere import Atmosphere, JobFailed
from tests.integration.conftest import ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess
from tests.support import ServerProcess, start_db_server

pytestmark = pytest.mark.slow

TASKS = "tests.integration.poison_tasks"
TIMEOUT = 30.0
MAX_BODY = 200_000
PART = 60_000  # the result and the next step's own data: 2 x 2 x PART in one update > MAX_BODY


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("db-small-body")
    server = start_db_server(
        data_dir, extra_args=["--keep-alive", "1", "--max-body", str(MAX_BODY)]
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_url(small_server: ServerProcess, ns: str) -> str:
    """This module's processes all use the small-body server."""
    return small_server.db_url(ns)


def test_a_decision_the_server_refuses_is_dead_lettered_and_the_rest_flows(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud(TASKS, concurrency=2)
    echo = maker.tasks["echo"]
    steps: list[dict[str, Any]] = [
        {"type": "blob", "data": PART, "timeout": TIMEOUT},
        {"type": "echo", "data": "y" * PART},
    ]
    before = [echo.submit(i, timeout=TIMEOUT) for i in range(10)]
    poison = maker.submit(steps, lambda error, data: None)
    after = [echo.submit(i, timeout=TIMEOUT) for i in range(10, 20)]
    with pytest.raises(JobFailed, match="HTTP 413") as info:
        poison.get()
    assert info.value.job_id == f"{poison.id}-0"
    assert info.value.error_type == "RequestRefused"
    assert [h.get()["echo"] for h in before + after] == list(range(20))
    record = maker.database.get(f"{ROOT}/jobs/{poison.id}-0")
    assert record["state"] == "failed" and "exceeds 200000 bytes" in record["error"]["message"]
    assert maker.database.get(f"{ROOT}/jobs/{poison.id}-1") is None
    assert maker.database.get(f"{ROOT}/live/chains/{poison.id}") is None
    assert "the database refused the write to settle its outcome" in dispatcher.log
    # Still dispatching after the resync that followed.
    assert echo.submit("later", timeout=TIMEOUT).get()["echo"] == "later"
