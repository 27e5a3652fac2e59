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
from atmosphere.scheduler.routing import CloudLoad


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
    for cloud in clouds:
        assert len(by_cloud.get(cloud.id, [])) <= cloud.capacity


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
