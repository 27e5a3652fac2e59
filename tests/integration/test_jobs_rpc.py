"""RPC, errors, fire-and-forget and caller timeouts with real processes: the embedded server,
``atmosphere dispatcher`` and ``atmosphere cloud`` (tests.integration.jobs_tasks)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from atmosphere import Atmosphere, JobFailed, JobTimeout
from atmosphere.jobs import payload
from tests.integration.conftest import REPO, ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess, wait_until

pytestmark = pytest.mark.slow


def job(maker: Atmosphere, job_id: str) -> Any:
    return maker.database.get(f"{ROOT}/jobs/{job_id}")


def test_rpc(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    cloud = start_cloud()
    handle = maker.tasks["echo"].submit(name="user1", data={"msg": "hello"}, timeout=20)
    result = handle.get()
    assert result["echo"] == {"msg": "hello"} and result["pid"] == cloud.pid
    assert result["ticket"] == {"type": "echo", "name": "user1", "id": handle.id}
    record = job(maker, handle.id)
    assert record["state"] == "succeeded" and record["cloud"] == cloud.cloud_id


def test_original_form_with_a_callback(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    got: list[Any] = []
    handle = maker.submit(
        {"type": "echo", "name": "my first job", "data": {"msg1": "Hello"}, "timeout": 20},
        lambda error, data: got.append((error, data["echo"])),
    )
    handle.get()
    wait_until(lambda: got, 5, "callback")
    assert got == [(None, {"msg1": "Hello"})]


def test_a_handler_that_raises(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    handle = maker.tasks["boom"].submit(data="x", timeout=20)
    with pytest.raises(JobFailed, match="boom: x") as info:
        handle.get()
    assert info.value.error_type == "ValueError"
    assert "raise ValueError" in (info.value.remote_traceback or "")
    assert job(maker, handle.id)["state"] == "failed"


def test_a_non_json_result_fails_the_job_and_the_cloud_goes_on(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    cloud = start_cloud()
    with pytest.raises(JobFailed, match="not JSON-serialisable"):
        maker.tasks["nonjson"].submit(timeout=20).get()
    assert maker.tasks["echo"].submit(data=1, timeout=20).get()["echo"] == 1
    assert cloud.proc.poll() is None


def test_fire_and_forget(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    handle = maker.submit({"type": "echo", "data": "ff"})
    assert not handle.tracked
    record = wait_until(
        lambda: (r := job(maker, handle.id)) and r.get("state") == "succeeded" and r, 20, "done"
    )
    assert payload(record, "result")["echo"] == "ff" and "reply_to" not in record
    assert maker.database.get(f"{ROOT}/replies") is None


def test_caller_timeout_while_the_job_goes_on(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud()
    handle = maker.tasks["sleep"].submit(data=1.5, timeout=0.5)
    with pytest.raises(JobTimeout):
        handle.get()
    record = wait_until(
        lambda: (r := job(maker, handle.id)) and r.get("state") == "succeeded" and r, 20, "done"
    )
    assert payload(record, "result")["slept"] == 1.5
    with pytest.raises(JobTimeout):  # the late result is recorded, not delivered
        handle.get()


def test_submit_from_the_shell(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], db_url: str
) -> None:
    start_cloud()
    base = [sys.executable, "-m", "atmosphere", "submit", "--db-url", db_url, "--root", ROOT]
    done = subprocess.run(
        [*base, "echo", "--name", "cli", "--data", '{"a": 1}', "--timeout", "20", "--wait"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["echo"] == {"a": 1}
    failed = subprocess.run(
        [*base, "boom", "--data", '"z"', "--timeout", "20", "--wait"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert failed.returncode == 1 and "boom: z" in failed.stderr


def test_map_many_jobs(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    start_cloud(concurrency=2)
    handles = maker.tasks["echo"].map(range(60), timeout=60)
    assert [h.get()["echo"] for h in handles] == list(range(60))


def test_garbage_under_the_root_stops_nobody(
    dispatcher: DispatcherProcess, start_cloud: Callable[..., CloudProcess], maker: Atmosphere
) -> None:
    cloud = start_cloud()
    maker.tasks["echo"].submit(data=0, timeout=20).get()  # the maker's reply stream is up
    maker.database.update(
        ROOT,
        {
            f"live/inbox/{cloud.cloud_id}/junk": "not an assignment",
            "live/queue/echo/junk": 42,
            f"replies/{maker.maker.id}/junk": ["not", "a", "reply"],
            "live/outcomes/junk": "x",
            "jobs/junk": True,
        },
    )
    assert maker.tasks["echo"].submit(data="still", timeout=20).get()["echo"] == "still"
    wait_until(
        lambda: maker.database.get(f"{ROOT}/live/inbox/{cloud.cloud_id}/junk") is None,
        20,
        "the cloud removed the garbage assignment",
    )
    assert cloud.proc.poll() is None and dispatcher.alive()
