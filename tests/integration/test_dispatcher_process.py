"""``atmosphere dispatcher`` as a real process against the embedded server, with simulated clouds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from atmosphere.db.client import FirebaseDatabase
from atmosphere.jobs import payload
from atmosphere.paths import Paths
from tests.integration.conftest import FAST_ENV, ROOT
from tests.integration.dispatcher_support import (
    DispatcherProcess,
    SimCloud,
    states,
    submit,
    wait_until,
)


def test_two_clouds_share_the_load_least_loaded_first(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    a = SimCloud(db_url, ROOT, "cloud-a", ["work"], work=0.05)
    b = SimCloud(db_url, ROOT, "cloud-b", ["work"], work=0.05)
    procs.extend([a, b])
    ids = [submit(db, paths, "work", {"n": i}) for i in range(20)]
    wait_until(lambda: all(states(db, paths).get(i) == "succeeded" for i in ids), 30, "all done")
    # A SimCloud notes a job as run once its write has returned, which can be after the record
    # shows it succeeded (CI, 2026-12-04): wait for that, bounded.
    wait_until(lambda: len(a.ran) + len(b.ran) >= 20, 5, "every completion's write returned")
    assert len(a.ran) + len(b.ran) == 20
    assert len(a.ran) >= 5 and len(b.ran) >= 5  # both clouds got work
    assert a.max_held <= 1 and b.max_held <= 1  # never more than a busy cloud's one slot
    wait_until(lambda: db.get(paths.outcomes()) is None, 10, "outcomes settled")
    assert db.get(paths.queue()) is None


def test_jobs_without_a_cloud_wait_and_run_once_one_registers(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    job = submit(db, paths, "later", 1)
    wait_until(lambda: db.get(paths.queue("later", job)) is not None, 5, "queued")
    shown = subprocess.run(
        [sys.executable, "-m", "atmosphere", "status", "--db-url", db_url, "--root", ROOT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "no cloud for this type" in shown.stdout and "later" in shown.stdout
    cloud = SimCloud(db_url, ROOT, "late-cloud", ["later"])
    procs.append(cloud)
    wait_until(lambda: states(db, paths).get(job) == "succeeded", 15, "ran")


def test_dispatcher_restart_mid_stream_loses_no_job(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    first = DispatcherProcess(db_url, ROOT, FAST_ENV)
    procs.append(first)
    cloud = SimCloud(db_url, ROOT, "steady", ["work"], slots=2, work=0.02)
    procs.append(cloud)
    ids = [submit(db, paths, "work", i, reply_to="maker-1") for i in range(60)]
    wait_until(lambda: len(cloud.ran) >= 10, 20, "some jobs ran")
    first.kill()  # kill -9 mid-stream
    more = [submit(db, paths, "work", i, reply_to="maker-1") for i in range(20)]
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    everything = ids + more
    wait_until(
        lambda: all(states(db, paths).get(i) == "succeeded" for i in everything), 40, "all done"
    )
    replies = db.get(paths.replies("maker-1")) or {}
    assert set(everything) <= set(replies)
    wait_until(lambda: db.get(paths.live) is not None and db.get(paths.outcomes()) is None, 10)
    assert db.get(paths.queue()) is None


GARBAGE: list[tuple[str, Any]] = [
    ("live", None),  # placeholder replaced below: keeps the table readable
    ("live/queue/work/bad1", "not a job"),
    ("live/queue/work/bad2", {"type": 5}),
    ("live/queue/oops", 17),
    ("live/clouds/ghost", {"types": "everything"}),
    ("live/inbox/ghost/x", [1, 2, 3]),
    ("live/outcomes/nobody", {"ok": "perhaps"}),
    ("live/outcomes/unknown-job", {"ok": True, "cloud": "x", "attempt": 1}),
    ("live/chains/broken", {"steps": 3}),
    ("live/delayed/broken", {"eta": "tomorrow"}),
    ("live/what", {"is": "this"}),
    ("jobs/junk", "junk"),
    ("stats", "junk"),
]


def test_garbage_under_the_root_does_not_stop_the_dispatcher(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    dispatcher = DispatcherProcess(db_url, ROOT, FAST_ENV)
    procs.append(dispatcher)
    cloud = SimCloud(db_url, ROOT, "robust", ["work"])
    procs.append(cloud)
    for path, value in GARBAGE[1:]:
        db.set(f"{ROOT}/{path}", value)
    job = submit(db, paths, "work", "after garbage")
    wait_until(lambda: states(db, paths).get(job) == "succeeded", 15, "ran after garbage")
    db.set(f"{ROOT}/live/queue", "everything is garbage now")
    job2 = submit(db, paths, "work", "after more garbage")
    wait_until(lambda: states(db, paths).get(job2) == "succeeded", 15, "ran after more garbage")
    assert dispatcher.alive()
    assert "Traceback" not in dispatcher.log
    assert dispatcher.stop() == 0


def test_dead_cloud_jobs_are_requeued_to_another_cloud(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    doomed = SimCloud(db_url, ROOT, "doomed", ["work"], work=0.3)
    procs.append(doomed)
    doomed.frozen = True  # takes jobs, never finishes them, stops heartbeating: a hung host
    job = submit(db, paths, "work", "survive", reply_to="maker-2")
    wait_until(lambda: db.get(paths.inbox("doomed", job)) is not None, 10, "assigned to doomed")
    rescuer = SimCloud(db_url, ROOT, "rescuer", ["work"])
    procs.append(rescuer)
    wait_until(lambda: states(db, paths).get(job) == "succeeded", 15, "ran elsewhere")
    wait_until(lambda: bool(rescuer.ran), 5, "the rescuer's completion write returned")
    assert rescuer.ran == [job]
    assert db.get(paths.clouds("doomed")) is None
    assert payload(db.get(paths.replies("maker-2", job)), "result")["cloud"] == "rescuer"


def submit_chain(
    db: FirebaseDatabase, paths: Paths, chain_id: str, steps: list[dict[str, Any]], reply_to: str
) -> None:
    """What a maker writes for a chain: its state plus step 0 (docs/protocol.md)."""
    first = {
        "id": f"{chain_id}-0",
        "type": steps[0]["type"],
        "name": "user1",
        "data": steps[0].get("data"),
        "timeout": 30,
        "chain": {"id": chain_id, "step": 0},
        "submitted": {".sv": "timestamp"},
    }
    state = {
        "name": "user1",
        "steps": steps,
        "timeout": 30,
        "step": 0,
        "reply_to": reply_to,
        "submitted": {".sv": "timestamp"},
    }
    db.update(
        "",
        {
            paths.chains(chain_id): state,
            paths.jobs(first["id"]): {**first, "state": "queued"},
            paths.queue(first["type"], first["id"]): first,
        },
    )


def test_five_step_chain_cascades_data_and_replies_once(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    types = ["first", "second", "third", "fourth", "fifth"]
    seen: dict[str, Any] = {}

    def handler(spec: dict[str, Any]) -> Any:
        seen[spec["type"]] = payload(spec, "data")
        return {"from": spec["type"]}

    procs.append(SimCloud(db_url, ROOT, "chainer", types, handler=handler))
    steps: list[dict[str, Any]] = [{"type": t, "data": {"own": i}} for i, t in enumerate(types)]
    steps[2]["callback"] = True
    submit_chain(db, paths, "chainA", steps, "maker-3")
    wait_until(lambda: states(db, paths).get("chainA-4") == "succeeded", 20, "chain done")
    assert seen["first"] == {"own": 0}
    assert seen["second"] == {"own": 1, "first": {"from": "first"}}
    assert seen["fifth"] == {"own": 4, "fourth": {"from": "fourth"}}
    reply = db.get(paths.replies("maker-3", "chainA"))
    assert reply == {
        "ok": True,
        "job": "chainA-2",
        "result_json": '{"from":"third"}',
    }  # the callback step
    wait_until(lambda: db.get(paths.chains()) is None, 10, "chain record deleted")


def test_an_error_mid_chain_stops_it_and_replies_at_once(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))

    def handler(spec: dict[str, Any]) -> Any:
        if spec["type"] == "breaks":
            raise RuntimeError("step two broke")
        return "fine"

    procs.append(SimCloud(db_url, ROOT, "chainer", ["ok", "breaks"], handler=handler))
    steps = [{"type": "ok"}, {"type": "breaks"}, {"type": "ok"}]
    submit_chain(db, paths, "chainB", steps, "maker-4")
    reply = wait_until(lambda: db.get(paths.replies("maker-4", "chainB")), 20, "error reply")
    assert reply["ok"] is False and reply["job"] == "chainB-1"
    assert "step two broke" in reply["error"]["message"]
    assert db.get(paths.jobs("chainB-1"))["state"] == "failed"
    wait_until(lambda: db.get(paths.chains()) is None, 10, "chain record deleted")
    assert db.get(paths.jobs("chainB-2")) is None  # the chain stopped


def test_retries_with_backoff_then_success(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))

    def handler(spec: dict[str, Any]) -> Any:
        if spec["attempt"] < 3:
            raise RuntimeError(f"flaky on attempt {spec['attempt']}")
        return "third time"

    procs.append(SimCloud(db_url, ROOT, "flaky", ["flaky"], handler=handler))
    job = submit(db, paths, "flaky", None, reply_to="maker-5", retries=2, retry_backoff=0.2)
    reply = wait_until(lambda: db.get(paths.replies("maker-5", job)), 20, "final reply")
    assert reply["ok"] is True and payload(reply, "result") == "third time"
    record = db.get(paths.jobs(job))
    assert record["state"] == "succeeded" and record["attempts"] == 3
    # One short entry per failed attempt, keyed by attempt (Firebase returns int keys as a list).
    failed = (
        [o for o in record["outcomes"] if o]
        if isinstance(record["outcomes"], list)
        else list(record["outcomes"].values())
    )
    assert [o["message"] for o in failed] == ["flaky on attempt 1", "flaky on attempt 2"]


def test_retries_exhausted_is_a_dead_letter_with_one_error_reply(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))

    def handler(spec: dict[str, Any]) -> Any:
        raise RuntimeError("always broken")

    procs.append(SimCloud(db_url, ROOT, "broken", ["broken"], handler=handler))
    job = submit(db, paths, "broken", None, reply_to="maker-6", retries=1, retry_backoff=0.1)
    reply = wait_until(lambda: db.get(paths.replies("maker-6", job)), 20, "error reply")
    assert reply["ok"] is False
    wait_until(lambda: db.get(paths.jobs(job)).get("state") == "failed", 10, "dead letter")
    assert db.get(paths.delayed()) is None and db.get(paths.queue()) is None


def test_delayed_jobs_survive_a_dispatcher_restart_and_run_on_time(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    first = DispatcherProcess(db_url, ROOT, FAST_ENV)
    procs.append(first)
    procs.append(SimCloud(db_url, ROOT, "patient", ["later"]))
    eta = int(time.time() * 1000) + 2500
    spec = {"id": "delayed-1", "type": "later", "name": "n", "eta": eta, "attempt": 1}
    db.update(
        "",
        {paths.jobs("delayed-1"): {**spec, "state": "delayed"}, paths.delayed("delayed-1"): spec},
    )
    first.kill()
    procs.append(DispatcherProcess(db_url, ROOT, FAST_ENV))
    wait_until(lambda: states(db, paths).get("delayed-1") == "succeeded", 20, "ran")
    assert db.get(paths.jobs("delayed-1"))["assigned"] >= eta


def test_finished_jobs_and_their_replies_are_collected_after_retention(
    db_url: str, db: FirebaseDatabase, paths: Paths, procs: list[Any]
) -> None:
    old = int(time.time() * 1000) - 60_000
    db.update(
        "",
        {
            paths.jobs("old-1"): {
                "id": "old-1",
                "type": "t",
                "state": "succeeded",
                "finished": old,
                "reply_to": "maker-7",
            },
            paths.replies("maker-7", "old-1"): {"ok": True, "job": "old-1"},
            paths.jobs("running-1"): {"id": "running-1", "type": "t", "state": "assigned"},
            f"{paths.stats('200001010000')}/t/succeeded": 3,
        },
    )
    procs.append(DispatcherProcess(db_url, ROOT, {**FAST_ENV, "ATMOSPHERE_RETENTION": "30"}))
    wait_until(lambda: db.get(paths.jobs("old-1")) is None, 20, "old job collected")
    assert db.get(paths.replies("maker-7", "old-1")) is None
    assert db.get(paths.jobs("running-1")) is not None
    wait_until(lambda: db.get(paths.stats("200001010000")) is None, 10, "old stats collected")
