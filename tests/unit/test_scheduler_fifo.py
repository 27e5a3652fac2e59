"""Per-type queues stay in FIFO (id) order as jobs come and go, so a round never sorts a queue."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.jobs import JobSpec
from atmosphere.scheduler import assigning
from atmosphere.scheduler.fifo import FifoJobs
from atmosphere.scheduler.routing import CloudLoad
from atmosphere.scheduler.state import LiveState


def _spec(job_id: str) -> JobSpec:
    return JobSpec(id=job_id, type="a", name="n")


ids = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), ids),
        st.tuples(st.just("remove"), ids),
        st.tuples(st.just("walk"), st.integers(min_value=0, max_value=5)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_fifo_is_a_dict_iterated_in_id_order(steps: list[tuple[str, Any]]) -> None:
    fifo, model = FifoJobs(), {}
    for op, arg in steps:
        if op == "add":
            fifo[arg] = model[arg] = _spec(arg)
        elif op == "remove":
            assert fifo.pop(arg, None) == model.pop(arg, None)
        else:
            # Walk part of the way, removing what we pass (as a round assigns), then look.
            for n, job_id in enumerate(list(fifo)[:arg]):
                assert n < arg
                del fifo[job_id]
                del model[job_id]
        assert list(fifo) == sorted(model)
        assert len(fifo) == len(model)


def test_pop_without_a_default_refuses_an_absent_job_as_a_dict_does() -> None:
    fifo = FifoJobs()
    fifo["a"] = spec = _spec("a")
    assert fifo.pop("a") is spec
    with pytest.raises(KeyError):
        fifo.pop("a")
    assert fifo.pop("a", None) is None
    assert list(fifo) == []


def test_a_walk_sees_jobs_added_and_removed_under_it() -> None:
    fifo = FifoJobs()
    for job_id in ("b", "d", "f"):
        fifo[job_id] = _spec(job_id)
    seen = []
    for job_id in fifo:
        seen.append(job_id)
        del fifo[job_id]  # assigned
        if job_id == "b":
            fifo["c"] = _spec("c")  # requeued behind us: still ahead of the walk
            fifo["a"] = _spec("a")  # older than where we are: the next walk's
        if job_id == "d":
            fifo["g"] = _spec("g")
    assert seen == ["b", "c", "d", "f", "g"]
    assert list(fifo) == ["a"]


def test_removed_ids_do_not_pile_up() -> None:
    fifo = FifoJobs()
    for n in range(10_000):
        fifo[f"{n:05}"] = _spec(f"{n:05}")
    for n in range(1, 10_000, 2):  # from the middle, where no walk drops them
        del fifo[f"{n:05}"]
    for n in range(0, 9_000, 2):
        del fifo[f"{n:05}"]
    assert len(fifo._ids) - fifo._head <= 2 * len(fifo) + 1024
    assert list(fifo) == [f"{n:05}" for n in range(9_000, 10_000, 2)]


class CountedId(str):
    """A job id that counts how often it is compared (sorting n ids costs ~n log n)."""

    comparisons = 0

    def __lt__(self, other: object) -> bool:
        CountedId.comparisons += 1
        return str.__lt__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        CountedId.comparisons += 1
        return str.__gt__(self, other)  # type: ignore[operator]


def test_an_assignment_round_costs_the_jobs_assigned_not_the_queue_length() -> None:
    # Given 20,000 queued jobs of one type and one idle cloud with four slots
    state = LiveState()
    queue = {CountedId(f"job{n:06}"): {"type": "a", "name": "n"} for n in range(20_000)}
    state.apply("put", "/", {"queue": {"a": queue}})
    loads = {"c": CloudLoad(id="c", types=frozenset({"a"}), slots=4)}
    # When a round is planned
    CountedId.comparisons = 0
    placed = [spec.id for spec, _ in assigning.plan(state.queue, loads)]
    # I expect the four oldest, found with a handful of comparisons (sorting: ~280,000)
    assert placed == ["job000000", "job000001", "job000002", "job000003"]
    assert CountedId.comparisons < 100
