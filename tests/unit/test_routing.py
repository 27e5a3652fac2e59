"""Least-loaded routing: never busy, never unregistered, least loaded first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.scheduler.routing import CloudLoad, has_cloud_for, pick_cloud

TYPES = ("a", "b", "c")


def cloud(cid: str, types: str = "a", **kw: object) -> CloudLoad:
    return CloudLoad(id=cid, types=frozenset(types), **kw)  # type: ignore[arg-type]


def test_holding_is_the_same_cloud_with_another_count_and_leaves_it_as_it_was() -> None:
    before = cloud("x", "ab", slots=3, lent=1, load=0.5, held=1, up=False, alive=False)
    after = before.holding(2)
    assert after == cloud("x", "ab", slots=3, lent=1, load=0.5, held=2, up=False, alive=False)
    assert before.held == 1 and hash(after) == hash(after.holding(2)) and not after.busy


def test_no_cloud_registered_for_the_type_keeps_the_job_queued() -> None:
    assert pick_cloud([cloud("x", "b")], "a") is None


def test_busy_cloud_gets_nothing() -> None:
    assert pick_cloud([cloud("x", held=1)], "a") is None


def test_lent_slots_add_capacity() -> None:
    assert pick_cloud([cloud("x", held=1, lent=1)], "a") == cloud("x", held=1, lent=1)


def test_draining_and_dead_clouds_get_nothing() -> None:
    assert pick_cloud([cloud("x", up=False), cloud("y", alive=False)], "a") is None


def test_least_fraction_of_slots_wins_over_os_load() -> None:
    busy_ish = cloud("x", slots=4, held=2, load=0.0)
    idle = cloud("y", slots=4, held=1, load=9.0)
    assert pick_cloud([busy_ish, idle], "a") == idle


def test_os_load_then_id_break_ties() -> None:
    assert pick_cloud([cloud("x", load=2.0), cloud("y", load=1.0)], "a") == cloud("y", load=1.0)
    assert pick_cloud([cloud("y"), cloud("x")], "a") == cloud("x")


def test_has_cloud_for_counts_busy_but_not_dead_clouds() -> None:
    assert has_cloud_for([cloud("x", held=1)], "a")
    assert not has_cloud_for([cloud("x", alive=False)], "a")


clouds_strategy = st.lists(
    st.builds(
        CloudLoad,
        id=st.text("abcdefgh", min_size=1, max_size=3),
        types=st.frozensets(st.sampled_from(TYPES), max_size=3),
        slots=st.integers(1, 4),
        lent=st.integers(0, 2),
        load=st.floats(0, 8, allow_nan=False),
        held=st.integers(0, 6),
        up=st.booleans(),
        alive=st.booleans(),
    ),
    max_size=8,
    unique_by=lambda c: c.id,
)


@given(clouds_strategy, st.sampled_from(TYPES))
def test_pick_is_eligible_and_least_loaded(clouds: list[CloudLoad], job_type: str) -> None:
    chosen = pick_cloud(clouds, job_type)
    eligible = [c for c in clouds if c.eligible_for(job_type)]
    if chosen is None:
        assert not eligible
        return
    assert job_type in chosen.types  # never unregistered
    assert chosen.held < chosen.slots + chosen.lent  # never busy
    assert chosen.up and chosen.alive
    assert all(chosen.sort_key() <= c.sort_key() for c in eligible)  # least loaded


@given(clouds_strategy, st.sampled_from(TYPES), st.integers(0, 30))
def test_repeated_picks_fill_clouds_without_overfilling(
    clouds: list[CloudLoad], job_type: str, jobs: int
) -> None:
    """Assigning job after job (as the dispatcher does) never exceeds any cloud's capacity."""
    by_id = {c.id: c for c in clouds}
    for _ in range(jobs):
        chosen = pick_cloud(by_id.values(), job_type)
        if chosen is None:
            break
        by_id[chosen.id] = CloudLoad(**{**chosen.__dict__, "held": chosen.held + 1})
    for original in clouds:
        now = by_id[original.id]
        if now.held != original.held:
            assert now.held <= now.capacity
