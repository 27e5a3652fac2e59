"""Dead clouds on the in-memory database: jobs that kill their cloud, late writes, first finish wins.

Issue 8, findings 4 and 6: a job whose clouds keep dying is failed with ``CloudDied`` after
``max_deaths``; a dead cloud's burial deletes only the inbox entries it saw; a frozen cloud that
completes after its job was rerun elsewhere does not overwrite the record the caller saw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.completion import completion_writes
from atmosphere.errors import CloudDied, ConfigError, job_error_from_json
from atmosphere.jobs import ChainStep, Finish, JobSpec, JobState, Outcome, Reply
from atmosphere.paths import Paths
from atmosphere.scheduler import firsts as firsts_module
from atmosphere.scheduler import moves
from atmosphere.scheduler import settler as settler_module
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from atmosphere.worker.execution import handback_writes
from tests.unit.dispatcher_kit import (
    Clock,
    R,
    beat,
    inbox,
    make,
    pump,
    register,
    submit,
    submit_chain,
)

PATHS = Paths(R)


def kill(db: MemoryDatabase, d: Dispatcher, clock: Clock, dead: str, *alive: str) -> None:
    """``dead`` falls silent while ``alive`` keep beating, until the dispatcher buries it."""
    for _ in range(20):
        clock.t += 0.5
        beat(db, clock, *alive)
        pump(db, d)
        if db.get(f"{R}/live/clouds/{dead}") is None and not inbox(db, dead):
            return
    raise AssertionError(f"cloud {dead} was never declared dead")


def held_by(db: MemoryDatabase, cloud: str, job_id: str) -> JobSpec:
    """The assignment ``cloud`` holds for ``job_id`` (what it runs)."""
    return JobSpec.from_json(inbox(db, cloud)[job_id], job_id)


def finish(
    db: MemoryDatabase, cloud: str, spec: JobSpec, result: Any, started: float = 0.007
) -> None:
    """The completion PATCH a real cloud writes (execution.completion_writes) for ``spec``."""
    complete(db, cloud, spec, Finish(ok=True, result=result), started)


def fail(db: MemoryDatabase, cloud: str, spec: JobSpec) -> None:
    """The completion PATCH of a run that failed and may be retried."""
    complete(db, cloud, spec, Finish(ok=False, error={"kind": "JobFailed", "message": "flaky"}))


def complete(
    db: MemoryDatabase, cloud: str, spec: JobSpec, done: Finish, started: float = 0.007
) -> None:
    writes = completion_writes(PATHS, cloud_id=cloud, spec=spec, finish=done, started=started)
    db.update(R, writes)


def record(db: MemoryDatabase, job_id: str) -> dict[str, Any]:
    value: dict[str, Any] = db.get(f"{R}/jobs/{job_id}") or {}
    return value


def result(db: MemoryDatabase, job_id: str) -> Any:
    """The job's result as its record stores it (encoded as ``result_json``, or plain)."""
    job = record(db, job_id)
    text = job.get("result_json")
    return json.loads(text) if isinstance(text, str) else job.get("result")


def answer(db: MemoryDatabase, maker: str, reply_id: str) -> Reply:
    """The reply waiting for ``maker``."""
    return Reply.from_json(db.get(f"{R}/replies/{maker}/{reply_id}"))


def killed_in_turn(
    db: MemoryDatabase, clock: Clock, clouds: list[str], **kw: Any
) -> tuple[Dispatcher, dict[str, JobSpec]]:
    """j1 (replying to m1) runs on each cloud in turn, each dying and the next taking over.

    Returns the dispatcher and what each cloud ran (the last one still runs it, or never got
    it when the one before was its last death).
    """
    register(db, clouds[0], "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock, **kw)
    runs = {}
    for dead, spare in zip(clouds, clouds[1:], strict=False):
        runs[dead] = held_by(db, dead, "j1")
        register(db, spare, "t")
        kill(db, d, clock, dead, spare)
    if "j1" in inbox(db, clouds[-1]):
        runs[clouds[-1]] = held_by(db, clouds[-1], "j1")
    return d, runs


# -- the pure burial ------------------------------------------------------------------------


def spec(job_id: str, deaths: int = 0) -> JobSpec:
    return JobSpec(id=job_id, type="t", name="n", deaths=deaths)


def test_a_burial_deletes_the_entries_it_saw_never_the_whole_inbox() -> None:
    burial = moves.bury_writes(PATHS, "c1", {"j1": spec("j1"), "j2": spec("j2")}, {}, 3)
    assert PATHS.inbox("c1") not in burial.writes
    assert burial.writes[PATHS.inbox("c1", "j1")] is None
    assert burial.writes[PATHS.inbox("c1", "j2")] is None
    assert burial.writes[PATHS.clouds("c1")] is None


def test_every_job_a_dead_cloud_held_counts_a_death_and_the_last_one_is_doomed() -> None:
    held = {"j1": spec("j1"), "j2": spec("j2", deaths=2), "j3": spec("j3")}
    outcome = Outcome.of(held["j3"], Finish(ok=True), cloud="c1")
    burial = moves.bury_writes(PATHS, "c1", held, {"j3": outcome}, 3)
    assert [(s.id, s.deaths) for s in burial.requeued] == [("j1", 1)]
    assert burial.writes[PATHS.queue("t", "j1")]["deaths"] == 1
    assert burial.writes[f"{PATHS.jobs('j1')}/deaths"] == 1
    assert [(s.id, s.deaths) for s in burial.doomed] == [("j2", 3)]
    assert PATHS.queue("t", "j2") not in burial.writes
    # A job that finished is settled from its outcome, not requeued, and no death is counted.
    assert PATHS.queue("t", "j3") not in burial.writes
    assert f"{PATHS.jobs('j3')}/deaths" not in burial.writes


def test_the_error_says_how_many_times_and_is_a_cloud_died_for_the_caller() -> None:
    error = moves.cloud_died_error(3)
    assert error["message"] == "the cloud running it died 3 times"
    assert isinstance(job_error_from_json(error), CloudDied)


def test_max_deaths_is_a_setting_read_from_the_environment() -> None:
    assert Settings().max_deaths == 3
    assert Settings.from_env({"ATMOSPHERE_MAX_DEATHS": "5"}).max_deaths == 5
    with pytest.raises(ConfigError):
        Settings(max_deaths=0)


# -- a job that kills its cloud ---------------------------------------------------------------


def test_a_job_whose_clouds_keep_dying_is_failed_after_max_deaths(
    db: MemoryDatabase, clock: Clock
) -> None:
    d, runs = killed_in_turn(db, clock, ["c1", "c2", "c3"])
    assert [runs[c].deaths for c in ("c1", "c2", "c3")] == [0, 1, 2]
    assert db.get(f"{R}/replies/m1/j1") is None
    register(db, "c4", "t")
    kill(db, d, clock, "c3", "c4")
    reply = db.get(f"{R}/replies/m1/j1")
    assert reply["ok"] is False and reply["error"]["kind"] == "CloudDied"
    assert reply["error"]["message"] == "the cloud running it died 3 times"
    job = record(db, "j1")
    assert job["state"] == "failed" and job["deaths"] == 3 and job["error"]["kind"] == "CloudDied"
    assert isinstance(job["finished"], int)
    assert inbox(db, "c4") == {} and db.get(f"{R}/live/queue") is None
    assert d.counts["cloud_died"] == 1 and d.counts["failed"] == 1
    # Other jobs keep flowing to the surviving cloud.
    submit(db, "j2", reply_to="m1")
    pump(db, d)
    finish(db, "c4", held_by(db, "c4", "j2"), "fine")
    pump(db, d)
    assert answer(db, "m1", "j2").result == "fine"


def test_a_chain_step_whose_clouds_keep_dying_fails_the_chain_with_one_reply(
    db: MemoryDatabase, clock: Clock
) -> None:
    register(db, "c1", "a")
    submit_chain(db, [ChainStep("a"), ChainStep("b")])
    d = make(db, clock)
    clouds = ["c1", "c2", "c3", "c4"]
    for dead, spare in zip(clouds, clouds[1:], strict=False):
        register(db, spare, "a")
        kill(db, d, clock, dead, spare)
    reply = db.get(f"{R}/replies/m1/ch")
    assert reply["ok"] is False and reply["error"]["kind"] == "CloudDied"
    assert db.get(f"{R}/live/chains") is None and db.get(f"{R}/jobs/ch-1") is None


# -- first finish wins ----------------------------------------------------------------------


def frozen_then_rerun(db: MemoryDatabase, clock: Clock) -> tuple[Dispatcher, JobSpec, JobSpec]:
    """j1 runs on c1, c1 freezes and is declared dead, j1 is rerun on c2: both runs' specs."""
    d, runs = killed_in_turn(db, clock, ["c1", "c2"])
    return d, runs["c1"], runs["c2"]


@pytest.mark.parametrize("leader", ["same", "successor", "standby"])
def test_a_frozen_cloud_finishing_after_the_rerun_does_not_overwrite_the_record(
    db: MemoryDatabase, clock: Clock, leader: str
) -> None:
    # successor: the leader that settled the rerun died, the frozen cloud woke under the next
    # one (CI stop 14's contradiction); standby: it kept the spec of every inbox entry it saw
    # while the leader settled and forgot.
    d, frozen, rerun = frozen_then_rerun(db, clock)
    standby = make(db, clock) if leader == "standby" else None
    finish(db, "c2", rerun, "rerun")
    pump(db, d)
    assert answer(db, "m1", "j1").result == "rerun"
    late = {"same": d, "successor": make(db, clock), "standby": standby}[leader]
    assert late is not None
    finish(db, "c1", frozen, "frozen")  # wakes up: its completion overwrites record and reply
    pump(db, late)
    job = record(db, "j1")
    assert result(db, "j1") == "rerun" and job["cloud"] == "c2" and job["state"] == "succeeded"
    assert answer(db, "m1", "j1").result == "rerun"
    assert "c1-1" in job["late"] and late.counts["restored"] == 1
    assert late.counts.get("succeeded", 0) == (1 if leader == "same" else 0)


@pytest.mark.parametrize("rerun_on", ["c1", "c2"])
def test_a_rerun_no_death_explains_does_not_overwrite_the_first_finish(
    db: MemoryDatabase, clock: Clock, rerun_on: str
) -> None:
    # CI stop 15: a deposed leader's assignment, built before it froze, lands after the new
    # leader assigned and settled the same job; a cloud runs it again (deaths stays 0) and its
    # completion writes the record and the reply over the first finish the caller got.
    register(db, "c1", "t")
    register(db, "c2", "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    held = next(c for c in ("c1", "c2") if "j1" in inbox(db, c))
    run = held_by(db, held, "j1")
    finish(db, held, run, "first", started=0.007)
    pump(db, d)
    assert answer(db, "m1", "j1").result == "first"
    db.update(R, moves.assign_writes(PATHS, run, run.to_json(), rerun_on))  # the late PATCH
    pump(db, d)
    finish(db, rerun_on, run, "second", started=0.009)
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == "first" and job["cloud"] == held and job["state"] == "succeeded"
    assert answer(db, "m1", "j1").result == "first"
    assert f"{rerun_on}-1" in job["late"] and d.counts["restored"] == 1
    assert d.counts.get("succeeded") == 1


def test_a_deposed_leaders_assignment_handed_back_after_the_job_succeeded_is_dropped(
    db: MemoryDatabase, clock: Clock
) -> None:
    # The late assignment lands on a cloud that saw the new leader's epoch: it hands the job
    # back to the queue, which would run it again with its record back to queued.
    register(db, "c1", "t")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    run = held_by(db, "c1", "j1")
    finish(db, "c1", run, "first")
    pump(db, d)
    db.update(R, moves.assign_writes(PATHS, run, run.to_json(), "c1"))
    db.update(R, handback_writes(PATHS, "c1", [run]))
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == "first" and job["state"] == "succeeded"
    assert db.get(f"{R}/live/queue") is None and not inbox(db, "c1")
    assert d.counts["replays_undone"] == 1 and d.counts.get("succeeded") == 1


def test_a_frozen_cloud_finishing_first_wins_over_the_rerun(
    db: MemoryDatabase, clock: Clock
) -> None:
    d, frozen, rerun = frozen_then_rerun(db, clock)
    finish(db, "c1", frozen, "frozen")
    pump(db, d)
    finish(db, "c2", rerun, "rerun")
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == "frozen" and job["cloud"] == "c1"
    assert answer(db, "m1", "j1").result == "frozen"
    assert "c2-1" in job["late"]


@pytest.mark.parametrize("new_leader", [False, True])
def test_a_dead_letter_stays_the_answer_when_a_frozen_cloud_finishes_later(
    db: MemoryDatabase, clock: Clock, new_leader: bool
) -> None:
    d, runs = killed_in_turn(db, clock, ["c1", "c2", "c3", "c4"])
    assert record(db, "j1")["error"]["kind"] == "CloudDied" and "c4" not in runs
    assert record(db, "j1")[firsts_module.FIELD]["state"] == "failed"
    if new_leader:  # elected after the dead letter: it knows it from the record
        d = make(db, clock)
    finish(db, "c3", runs["c3"], "woke up")
    pump(db, d)
    job = record(db, "j1")
    assert job["state"] == "failed" and job["error"]["kind"] == "CloudDied"
    assert result(db, "j1") is None
    assert (answer(db, "m1", "j1").error or {})["kind"] == "CloudDied"


def test_no_first_finish_is_built_until_a_second_finish_needs_it(
    db: MemoryDatabase, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building one costs a completion's writes: every settled job keeps only what it is built
    from (a rerun may land on any of them, see the deaths-0 test below)."""
    built: list[str] = []
    real = firsts_module.first_finish

    def counted(p: Paths, spec: JobSpec, *a: Any) -> Any:
        built.append(spec.id)
        return real(p, spec, *a)

    monkeypatch.setattr(firsts_module, "first_finish", counted)
    monkeypatch.setattr(settler_module, "first_finish", counted, raising=False)  # its old home
    register(db, "c1", "t", "a", "b")
    submit(db, "j1", reply_to="m1")
    d = make(db, clock)
    finish(db, "c1", held_by(db, "c1", "j1"), 1)
    pump(db, d)
    assert len(d.settler.firsts) == 1 and record(db, "j1")["state"] == "succeeded"
    submit_chain(db, [ChainStep("a"), ChainStep("b")])
    pump(db, d)
    finish(db, "c1", held_by(db, "c1", "ch-0"), 1)
    pump(db, d)
    assert len(d.settler.firsts) == 2 and record(db, "ch-0")["state"] == "succeeded"
    assert built == []


@pytest.mark.parametrize("first", ["c1", "c2"])
def test_a_second_finish_landing_before_the_first_is_settled_for_good_is_kept_as_late(
    db: MemoryDatabase, clock: Clock, first: str
) -> None:
    # The two completions share the outcome path: the second lands while our delete of the
    # first is still held (bookkeeping rides along for ``settle_delay``), so the delete would
    # destroy it unseen and its record write would stand.
    d, runs = killed_in_turn(db, clock, ["c1", "c2"], settle_delay=0.05)
    second = "c2" if first == "c1" else "c1"
    finish(db, first, runs[first], first)
    pump(db, d)
    assert db.get(f"{R}/live/outcomes/j1") is not None  # settled, its delete still held
    finish(db, second, runs[second], second)
    pump(db, d)
    clock.t += 0.1
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == first and job["cloud"] == first
    assert f"{second}-1" in job["late"] and db.get(f"{R}/live/outcomes") is None
    assert answer(db, "m1", "j1").result == first


# -- first finish wins across leaders ----------------------------------------------------------


def test_settling_a_job_that_lost_a_cloud_keeps_its_first_finish_in_the_record(
    db: MemoryDatabase, clock: Clock
) -> None:
    d, _, rerun = frozen_then_rerun(db, clock)
    finish(db, "c2", rerun, "rerun")
    pump(db, d)
    kept = record(db, "j1")[firsts_module.FIELD]
    assert kept["cloud"] == "c2" and kept["state"] == "succeeded" and kept["attempt"] == 1
    assert json.loads(kept["result_json"]) == "rerun"
    # A job that never lost a cloud keeps none: nothing is added to the hot path.
    submit(db, "j2", reply_to="m1")
    pump(db, d)
    finish(db, "c2", held_by(db, "c2", "j2"), "plain")
    pump(db, d)
    assert record(db, "j2")["state"] == "succeeded"
    assert firsts_module.FIELD not in record(db, "j2")


def test_the_first_finish_a_leader_settled_is_still_settled_once_by_its_successor(
    db: MemoryDatabase, clock: Clock
) -> None:
    # The first finish landed but its leader died before settling it: the next one settles it
    # (and keeps it), it is not mistaken for a late run.
    d, frozen, rerun = frozen_then_rerun(db, clock)
    finish(db, "c2", rerun, "rerun")
    successor = make(db, clock)
    assert successor.counts.get("succeeded") == 1
    assert record(db, "j1")[firsts_module.FIELD]["cloud"] == "c2"
    finish(db, "c1", frozen, "frozen")
    pump(db, successor)
    assert result(db, "j1") == "rerun" and answer(db, "m1", "j1").result == "rerun"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["ok", "cloud", "attempt", "state", "settled", "result_json", "x"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)


@given(json_values)
def test_a_first_finish_field_holding_anything_is_recalled_or_ignored_never_raises(
    raw: Any,
) -> None:
    # The record is data: garbage written there must not stop settling.
    kept = firsts_module.recalled(PATHS, spec("j1", deaths=1), raw)
    if kept is not None:
        assert kept.state.finished and kept.outcome.job_id == "j1"
        assert kept.first().record  # builds the writes a restore needs


def test_a_first_finish_recalled_from_the_record_is_the_one_persisted() -> None:
    s = spec("j1", deaths=1)
    outcome = Outcome.of(s, Finish(ok=True, result={"x": [1, "é"]}), cloud="c2", started=5.0)
    settled = firsts_module.Settled(PATHS, s, outcome, JobState.SUCCEEDED, 12.5)
    back = firsts_module.recalled(
        PATHS, s, json.loads(json.dumps(firsts_module.persisted(settled)))
    )
    assert back is not None and back.first() == settled.first()


@pytest.mark.parametrize("first", ["c1", "c2"])
def test_two_finishes_landing_in_one_batch_settle_the_first_and_keep_the_second_as_late(
    db: MemoryDatabase, clock: Clock, first: str
) -> None:
    # Both completions land before the dispatcher looks: the second overwrote the first's
    # outcome (one path per job), but the caller got the first's reply, so the first wins.
    d, runs = killed_in_turn(db, clock, ["c1", "c2"])
    second = "c2" if first == "c1" else "c1"
    finish(db, first, runs[first], first)
    finish(db, second, runs[second], second)
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == first and job["cloud"] == first
    assert answer(db, "m1", "j1").result == first
    assert f"{second}-1" in job["late"] and db.get(f"{R}/live/outcomes") is None
    assert d.counts["succeeded"] == 1 and d.counts["restored"] == 1


def test_overtaken_names_the_first_arrival_still_standing_when_another_run_replaced_it() -> None:
    def run(cloud: str, attempt: int = 1) -> Outcome:
        return Outcome("j1", cloud, attempt, Finish(ok=True))

    c1, c2, c3 = run("c1"), run("c2"), run("c3")
    assert settler_module.overtaken([("j1", c1), ("j1", c2)], {"j1": c2}.get) == [(c1, c2)]
    assert settler_module.overtaken([("j1", c1), ("j1", c2), ("j1", c3)], {"j1": c3}.get) == [
        (c1, c3)
    ]
    # Deleted in between: settled already (by us or a leader before us), not overtaken.
    assert settler_module.overtaken([("j1", c1), ("j1", None), ("j1", c2)], {"j1": c2}.get) == []
    # The same run's completion again (a retried PATCH), or none left in the view.
    assert settler_module.overtaken([("j1", c1), ("j1", run("c1"))], {"j1": run("c1")}.get) == []
    nothing: dict[str, Outcome] = {}
    assert settler_module.overtaken([("j1", c1), ("j1", c2)], nothing.get) == []


@pytest.mark.parametrize("retry_runs", [False, True])
def test_a_frozen_run_answering_while_its_rerun_is_retried_is_the_answer_for_good(
    db: MemoryDatabase, clock: Clock, retry_runs: bool
) -> None:
    # The rerun fails and is retried; then the frozen cloud wakes and succeeds the same
    # attempt: its reply is the first the caller sees, so it ends the job: the retry waiting
    # is dropped, or, already running (retry_runs), finishes late.
    register(db, "c1", "t")
    submit(db, "j1", reply_to="m1", retries=1)
    d = make(db, clock)
    frozen = held_by(db, "c1", "j1")
    register(db, "c2", "t")
    kill(db, d, clock, "c1", "c2")
    fail(db, "c2", held_by(db, "c2", "j1"))
    pump(db, d)
    assert d.counts["retried"] == 1 and record(db, "j1")["attempt"] == 2
    if retry_runs:
        clock.t += 60  # past the retry delay: attempt 2 is queued and assigned
        beat(db, clock, "c2")
        pump(db, d)
        assert held_by(db, "c2", "j1").attempt == 2
    finish(db, "c1", frozen, "frozen")  # the caller gets this reply: the first on the wire
    pump(db, d)
    assert answer(db, "m1", "j1").result == "frozen" and d.counts["adopted"] == 1
    assert db.get(f"{R}/live/queue") is None and db.get(f"{R}/live/delayed") is None
    if retry_runs:
        finish(db, "c2", held_by(db, "c2", "j1"), "retry")  # it writes record and reply
        pump(db, d)
        assert d.counts["restored"] == 1
    clock.t += 60
    beat(db, clock, "c2")
    pump(db, d)
    job = record(db, "j1")
    assert result(db, "j1") == "frozen" and job["state"] == "succeeded" and job["cloud"] == "c1"
    assert job["attempt"] == 1 and answer(db, "m1", "j1").result == "frozen"
    assert db.get(f"{R}/live/queue") is None and inbox(db, "c2") == {}


def test_kept_finishes_are_bounded_by_count_and_by_their_results_bytes() -> None:
    kept = firsts_module.Firsts(size=3, max_bytes=100)

    def settle(job_id: str, result: Any) -> None:
        s = JobSpec(id=job_id, type="t", name="t", data={"big": "d" * 1000})
        outcome = Outcome.of(s, Finish(ok=True, result=result), cloud="c1")
        kept.keep(firsts_module.Settled(PATHS, s, outcome, JobState.SUCCEEDED, 1.0))

    for n in range(4):
        settle(f"j{n}", n)
    assert [kept.knows(f"j{n}") for n in range(4)] == [False, True, True, True]
    settle("big1", {"r": "x" * 60})
    settle("big2", ["y" * 60])  # the two results together are over 100 bytes encoded
    assert not kept.knows("big1") and kept.knows("big2") and len(kept) == 1  # oldest go first
    kept.forget("big2")
    settle("big3", "z" * 90)
    settle("j9", 9)
    assert kept.knows("big3") and kept.knows("j9") and len(kept) == 2
    # The job's data is not held (a finish is rebuilt without it).
    assert all(s.spec.data is None for s, _ in kept._kept.values())
