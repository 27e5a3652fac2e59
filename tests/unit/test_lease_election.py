"""Election over the in-memory database: one leader, hand-over, takeover, self-fencing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atmosphere.errors import DatabaseError
from atmosphere.paths import Paths
from atmosphere.scheduler.election import Election
from atmosphere.scheduler.ha import dispatcher_id
from atmosphere.scheduler.lease import Lease
from atmosphere.testing import MemoryDatabase

PATHS = Paths("atm")
LEASE = 0.4


class Partitionable:
    """A MemoryDatabase view that can be cut off from the database (streams keep running)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)
        if name in ("transaction", "update", "get", "set", "delete") and callable(attr):

            def guarded(*args: Any, **kwargs: Any) -> Any:
                if self.cut:
                    raise DatabaseError("partitioned")
                return attr(*args, **kwargs)

            return guarded
        return attr


@pytest.fixture
def db() -> Iterator[MemoryDatabase]:
    database = MemoryDatabase()
    yield database
    database.close()


def election(db: Any, me: str, events: list[tuple[str, str, int]] | None = None) -> Election:
    log = events if events is not None else []
    return Election(
        db,
        PATHS,
        me=me,
        lease_seconds=LEASE,
        heartbeat_interval=0.1,
        on_elected=lambda e: log.append((me, "elected", e)),
        on_deposed=lambda e: log.append((me, "deposed", e)),
    )


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def leaders(*elections: Election) -> list[str]:
    return [e.me for e in elections if e.is_leader()]


def test_exactly_one_of_two_leads_and_presence_says_so(db: MemoryDatabase) -> None:
    a, b = election(db, "a"), election(db, "b")
    a.start()
    b.start()
    try:
        wait_for(lambda: leaders(a, b))
        assert len(leaders(a, b)) == 1
        leader = a if a.is_leader() else b
        assert leader.fence() == 1
        wait_for(
            lambda: (
                (db.get("atm/live/dispatchers") or {}).get(leader.me, {}).get("role") == "leader"
            )
        )
        presence = db.get("atm/live/dispatchers")
        assert set(presence) == {"a", "b"}
        assert {"host", "pid", "started", "heartbeat", "role"} <= set(presence["a"])
        assert Lease.from_json(db.get("atm/live/lease")) == Lease(
            leader.me, 1, db.get("atm/live/lease")["expires"]
        )
    finally:
        a.stop()
        b.stop()


def test_clean_stop_hands_over_at_once(db: MemoryDatabase) -> None:
    events: list[tuple[str, str, int]] = []
    a = election(db, "a", events)
    a.start()
    assert a.wait_leader(5)
    b = election(db, "b", events)
    b.start()
    try:
        started = time.monotonic()
        a.stop()
        assert b.wait_leader(5)
        assert time.monotonic() - started < LEASE  # no waiting for the lease to lapse
        assert b.fence() == 2
        assert ("a", "elected", 1) in events and ("b", "elected", 2) in events
        assert "a" not in (db.get("atm/live/dispatchers") or {})
    finally:
        b.stop()


def test_a_silent_leader_is_taken_over_after_one_lease(db: MemoryDatabase) -> None:
    a = election(db, "a")
    a.start()
    assert a.wait_leader(5)
    b = election(db, "b")
    b.start()
    try:
        a._stopping.set()  # the leader's thread dies without a word (as under kill -9)
        a._wake.set()
        assert a._thread is not None
        a._thread.join()
        died = time.monotonic()
        assert b.wait_leader(5)
        took = time.monotonic() - died
        assert LEASE * 0.5 < took < LEASE * 3
        assert b.fence() == 2
        assert not a.is_leader()  # its own clock fenced it meanwhile
        # the new leader drops the dead one's presence (it still said "leader")
        wait_for(lambda: "a" not in (db.get("atm/live/dispatchers") or {}))
        assert db.get("atm/live/dispatchers/b/role") == "leader"
    finally:
        a.stop(hand_over=False)
        b.stop()


def test_a_partitioned_leader_fences_itself_before_anyone_takes_over(db: MemoryDatabase) -> None:
    cut_off = Partitionable(db)
    a = election(cut_off, "a")
    a.start()
    assert a.wait_leader(5)
    b = election(db, "b")
    b.start()
    overlap = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if a.is_leader() and b.is_leader():
                overlap.set()
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        cut_off.cut = True
        assert b.wait_leader(5)
        assert b.fence() == 2
        assert not a.is_leader()
    finally:
        done.set()
        watcher.join()
        cut_off.cut = False
        a.stop(hand_over=False)
        b.stop()
    assert not overlap.is_set(), "two dispatchers led at the same time"


def test_a_deposed_leader_sees_the_higher_epoch_and_stops(db: MemoryDatabase) -> None:
    events: list[tuple[str, str, int]] = []
    a = election(db, "a", events)
    a.start()
    try:
        assert a.wait_leader(5)
        db.set("atm/live/lease", {"owner": "intruder", "epoch": 9, "expires": 1})
        wait_for(lambda: not a.is_leader(), timeout=LEASE)
        wait_for(lambda: ("a", "deposed", 1) in events)
    finally:
        a.stop()


def test_a_new_leader_never_reuses_an_epoch(db: MemoryDatabase) -> None:
    db.set("atm/live/lease", {"owner": "old", "epoch": 41, "expires": 0})
    a = election(db, "a")
    a.start()
    try:
        assert a.wait_leader(5)
        assert a.fence() == 42
    finally:
        a.stop()


def test_dispatcher_ids_are_keys_and_unique_per_process_start() -> None:
    first, second = dispatcher_id(), dispatcher_id()
    assert first != second
    assert not set(".$#[]/") & set(first)
