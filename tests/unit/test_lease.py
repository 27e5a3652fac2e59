"""The leader lease decisions (pure), with a hypothesis check that epochs only grow."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.jobs import epoch_admissible as admissible
from atmosphere.scheduler.leadership.lease import (
    Lease,
    claim,
    describe,
    holds,
    lease_age,
    release,
    renew_interval,
    takeover_due,
    valid_for,
)

NOW = 1_000.0  # seconds; the wire carries ms
NOW_MS = 1_000_000


def test_an_absent_lease_is_taken_with_the_next_epoch() -> None:
    assert claim(None, me="a", now=NOW, lease_seconds=3) == Lease("a", 1, NOW + 3)
    # a deleted record never sends epochs backwards
    assert claim(None, me="a", now=NOW, lease_seconds=3, min_epoch=7) == Lease("a", 8, NOW + 3)


def test_a_released_lease_is_taken_at_once() -> None:
    released = Lease("b", 4, 0)
    assert released.released
    assert claim(released, me="a", now=NOW, lease_seconds=3) == Lease("a", 5, NOW + 3)


def test_the_owner_renews_with_the_same_epoch() -> None:
    mine = Lease("a", 4, NOW)
    assert claim(mine, me="a", now=NOW + 1, lease_seconds=3) == Lease("a", 4, NOW + 4)


def test_a_live_lease_of_someone_else_is_left_alone() -> None:
    theirs = Lease("b", 4, NOW + 3)
    assert claim(theirs, me="a", now=NOW, lease_seconds=3) is None
    # ...even when our stale view is of an older value: it was renewed since
    older = Lease("b", 4, NOW)
    assert claim(theirs, me="a", now=NOW, lease_seconds=3, stale=older) is None


def test_a_lease_unchanged_for_a_period_is_taken_over_with_a_higher_epoch() -> None:
    theirs = Lease("b", 4, NOW)
    assert claim(theirs, me="a", now=NOW, lease_seconds=3, stale=theirs) == Lease("a", 5, NOW + 3)


def test_release_only_by_the_owner() -> None:
    mine = Lease("a", 4, NOW)
    assert release(mine, me="a") == Lease("a", 4, 0)
    assert release(mine, me="b") is None
    assert release(None, me="a") is None
    assert release(Lease("a", 4, 0), me="a") is None


def test_holds() -> None:
    assert holds(Lease("a", 4, NOW), me="a", epoch=4)
    assert not holds(Lease("a", 5, NOW), me="a", epoch=4)
    assert not holds(Lease("a", 4, 0), me="a", epoch=4)
    assert not holds(None, me="a", epoch=4)


def test_takeover_timing_uses_the_local_clock_only() -> None:
    live = Lease("b", 1, NOW)
    assert not takeover_due(live, 2.9, 3.0)
    assert takeover_due(live, 3.0, 3.0)
    assert takeover_due(None, 0.0, 3.0)
    assert takeover_due(Lease("b", 1, 0), 0.0, 3.0)


def test_the_leader_stops_well_before_a_standby_may_take_over() -> None:
    # renewal started at t=10; a standby sees it no earlier and waits a whole lease after that
    assert valid_for(10.0, 3.0) < 10.0 + 3.0
    assert renew_interval(3.0) * 2 < valid_for(0.0, 3.0)  # two slow renewals are survivable


def test_fencing_accepts_equal_or_newer_epochs() -> None:
    assert admissible(5, 5) and admissible(6, 5) and not admissible(4, 5)
    assert admissible(1, None)
    assert not admissible(None, 3)


def test_lease_age() -> None:
    assert lease_age(Lease("a", 1, NOW + 3), NOW + 0.5, 3) == 0.5
    assert lease_age(Lease("a", 1, 0), NOW, 3) is None


def test_from_json_treats_garbage_as_absent() -> None:
    assert Lease.from_json({"owner": "a", "epoch": 2, "expires": 5}) == Lease("a", 2, 0.005)
    for bad in (None, 3, "x", {"owner": 1, "epoch": 2, "expires": 5}, {"owner": "a"}):
        assert Lease.from_json(bad) is None
    assert Lease.from_json({"owner": "a", "epoch": True, "expires": 5}) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["claim", "takeover", "release"]),
            st.integers(0, 10_000).map(lambda ms: ms / 1000),
        ),
        max_size=40,
    )
)
def test_epochs_never_decrease_and_a_new_owner_always_gets_a_new_epoch(
    ops: list[tuple[str, str, float]],
) -> None:
    lease: Lease | None = None
    now = NOW
    for me, op, step in ops:
        now += step
        if op == "release":
            new = release(lease, me=me)
        else:
            stale = lease if op == "takeover" else None
            new = claim(lease, me=me, now=now, lease_seconds=3, stale=stale)
        if new is None:
            continue
        if lease is not None:
            assert new.epoch >= lease.epoch
            if new.owner != lease.owner:
                assert new.epoch > lease.epoch
        lease = new


def test_describe_for_status() -> None:
    assert "none" in describe(None, NOW, 3.0)
    live = describe({"owner": "a", "epoch": 4, "expires": NOW_MS + 2500}, NOW, 3.0)
    assert "owner a" in live and "epoch 4" in live
    assert "renewed 0.5s ago" in live and "expires in 2.5s" in live
    assert "released" in describe({"owner": "a", "epoch": 4, "expires": 0}, NOW, 3.0)
    assert "expired 1.0s ago" in describe(
        {"owner": "a", "epoch": 4, "expires": NOW_MS - 1000}, NOW, 3.0
    )


def test_the_lease_is_seconds_in_python_and_the_same_ms_on_the_wire() -> None:
    # Given a lease as stored (integer ms), when it is parsed and written back,
    # I expect the very same record: a renewal compares it exactly (compare-and-set).
    raw = {"owner": "a", "epoch": 3, "expires": 1_764_000_000_123}
    lease = Lease.from_json(raw)
    assert lease is not None and lease.expires == 1_764_000_000.123
    assert lease.to_json() == raw
    renewed = claim(lease, me="a", now=1_764_000_000.5, lease_seconds=3)
    assert renewed is not None and renewed.to_json()["expires"] == 1_764_000_003_500
