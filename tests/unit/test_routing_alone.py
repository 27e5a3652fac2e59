"""A job that outlived a cloud runs alone (routing.runs_alone): it cannot take the jobs beside
it down with it again (the short chaos run caught an ordinary job dead-lettered CloudDied after
sharing a cloud three times with a job that calls os._exit)."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.jobs import JobSpec
from atmosphere.scheduler.assigning import plan
from atmosphere.scheduler.fifo import FifoJobs
from atmosphere.scheduler.routing import CloudLoad, closes


def _spec(job_id: str, deaths: int = 0, job_type: str = "t") -> JobSpec:
    return JobSpec(id=job_id, type=job_type, name="n", deaths=deaths)


def _queue(*specs: JobSpec) -> dict[str, FifoJobs]:
    queue: dict[str, FifoJobs] = {}
    for spec in sorted(specs, key=lambda s: s.id):
        queue.setdefault(spec.type, FifoJobs())[spec.id] = spec
    return queue


def _cloud(cloud_id: str, slots: int = 2, held: int = 0, closed: bool = False) -> CloudLoad:
    return CloudLoad(cloud_id, frozenset({"t", "u"}), slots=slots, held=held, closed=closed)


def _placed(queue: Mapping[str, FifoJobs], *clouds: CloudLoad) -> list[tuple[str, str]]:
    return [(spec.id, cloud) for spec, cloud in plan(queue, {c.id: c for c in clouds})]


def test_a_job_that_outlived_a_cloud_gets_an_empty_cloud_to_itself() -> None:
    # Given a job that died once and two ordinary jobs behind it, and two 2-slot clouds
    queue = _queue(_spec("a", deaths=1), _spec("b"), _spec("c"))
    # Then it takes a cloud alone: the others share the second cloud, none joins it
    assert _placed(queue, _cloud("x"), _cloud("y")) == [("a", "x"), ("b", "y"), ("c", "y")]


def test_it_waits_while_no_cloud_is_empty_and_that_cloud_is_given_nothing_more() -> None:
    # Given a job that died once, and clouds that each hold a job already
    queue = _queue(_spec("a", deaths=1), _spec("b", job_type="u"))
    # Then it waits; the least-loaded cloud is kept for it (emptied), the other gets the rest
    placed = _placed(queue, _cloud("x", slots=4, held=1), _cloud("y", slots=2, held=1))
    assert placed == [("b", "y")]


def test_a_cloud_holding_such_a_job_takes_nothing_more() -> None:
    queue = _queue(_spec("b"), _spec("c"))
    assert _placed(queue, _cloud("x", held=1, closed=True), _cloud("y")) == [
        ("b", "y"),
        ("c", "y"),
    ]


@given(
    deaths=st.lists(st.integers(0, 2), min_size=1, max_size=12),
    slots=st.lists(st.integers(1, 3), min_size=1, max_size=4),
)
def test_no_cloud_ever_holds_a_job_that_outlived_a_cloud_beside_another(
    deaths: list[int], slots: list[int]
) -> None:
    queue = _queue(*(_spec(f"j{i:02d}", d, "t" if i % 3 else "u") for i, d in enumerate(deaths)))
    clouds = [_cloud(f"c{i}", s) for i, s in enumerate(slots)]
    by_cloud: dict[str, list[int]] = {}
    for job_id, cloud in _placed(queue, *clouds):
        by_cloud.setdefault(cloud, []).append(deaths[int(job_id[1:])])
    for held in by_cloud.values():
        assert len(held) == 1 or not any(held), held
    # and every cloud is still filled at most to its capacity
    for load in clouds:
        assert len(by_cloud.get(load.id, [])) <= load.capacity


def test_the_dispatchers_view_closes_a_cloud_that_holds_such_a_job() -> None:
    from atmosphere.presence import CloudInfo
    from atmosphere.scheduler.assigning import cloud_loads
    from atmosphere.scheduler.state import LiveState

    state = LiveState()
    snapshot = {
        "clouds": {
            c: CloudInfo(id=c, name=c, types=frozenset({"t"}), slots=2).to_json()
            for c in ("x", "y")
        },
        "inbox": {
            "x": {"a": _spec("a", deaths=1).to_json()},
            "y": {"b": _spec("b").to_json()},
        },
    }
    state.apply("put", "", snapshot)
    loads = cloud_loads(state, {}, now=0.0, dead_after=10.0)
    assert loads["x"].closed and not loads["y"].closed
    assert _placed(_queue(_spec("c")), *loads.values()) == [("c", "y")]


def _busy(cloud_id: str, held: int = 1, lent: int = 0, slots: int = 2) -> CloudLoad:
    return CloudLoad(cloud_id, frozenset({"t", "u"}), slots=slots, held=held, lent=lent)


def test_a_dead_clouds_jobs_waiting_to_run_alone_close_at_most_one_cloud_per_round() -> None:
    # The chaos run that stalled for 60 s: a dead cloud's five jobs all ran alone, the oldest
    # in the queue; each emptied a cloud, so every cloud was closed, and handlers waiting on
    # jobs of their own (r1 -> r2 -> noop) waited until their timeout.
    alone = [_spec(f"a{i}", deaths=1) for i in range(5)]
    queue = _queue(*alone, _spec("b1"), _spec("b2"), _spec("c1", job_type="u"))
    placed = _placed(queue, _busy("x", slots=3), _busy("y", slots=3), _busy("z", slots=3))
    # The ordinary jobs behind them still go, to two of the three clouds
    assert sorted(job for job, _ in placed) == ["b1", "b2", "c1"]
    assert len({cloud for _, cloud in placed}) == 2


def test_a_cloud_whose_handler_waits_on_another_job_is_never_emptied() -> None:
    queue = _queue(_spec("a", deaths=1), _spec("b"), _spec("c"))
    # x is the least loaded, but its handler waits on a sub-job (lent): y is emptied instead
    placed = _placed(queue, _busy("x", lent=1), _busy("y"))
    assert placed == [("b", "x"), ("c", "x")]
    # With every handler waiting, nothing is emptied: the job waits, the rest flows
    placed = _placed(queue, _busy("x", lent=1), _busy("y", lent=1))
    assert sorted(job for job, _ in placed) == ["b", "c"]
    assert {cloud for _, cloud in placed} == {"x", "y"}


def test_a_cloud_running_such_a_job_reopens_while_that_handler_waits_on_a_sub_job() -> None:
    assert closes(True, lent=0)
    assert not closes(True, lent=1)  # else its sub-job may have nowhere to run
    assert not closes(False, lent=0)


@given(
    deaths=st.lists(st.integers(0, 2), min_size=1, max_size=12),
    clouds=st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=4
    ),
)
def test_ordinary_jobs_are_held_back_only_by_full_clouds_or_the_one_being_emptied(
    deaths: list[int], clouds: list[tuple[int, int, int]]
) -> None:
    # Given any queue and clouds of any slots, jobs held and slots lent
    queue = _queue(*(_spec(f"j{i:02d}", d, "t" if i % 3 else "u") for i, d in enumerate(deaths)))
    loads = [
        CloudLoad(f"c{i}", frozenset({"t", "u"}), slots=s, held=min(h, s + lent), lent=lent)
        for i, (s, h, lent) in enumerate(clouds)
    ]
    placed = _placed(queue, *loads)
    got: dict[str, int] = {}
    for _, cloud in placed:
        got[cloud] = got.get(cloud, 0) + 1
    waiting = {s.id for jobs in queue.values() for s in jobs.values() if s.deaths == 0}
    waiting -= {job for job, _ in placed}
    if not waiting:
        return
    # Then a cloud that had room left unused while an ordinary job waits runs a job alone, or
    # was being emptied: at most one, and one with no handler waiting on another job
    alone = {cloud for job, cloud in placed if deaths[int(job[1:])] > 0}
    unused = [c for c in loads if c.held + got.get(c.id, 0) < c.capacity and c.id not in alone]
    assert len(unused) <= 1 and all(c.lent == 0 for c in unused), (unused, placed)
