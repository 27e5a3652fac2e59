"""Election over the in-memory database: one leader, hand-over, takeover, self-fencing."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atmosphere.errors import DatabaseError
from atmosphere.paths import Paths
from atmosphere.scheduler.dispatcher import new_dispatcher_id as dispatcher_id
from atmosphere.scheduler.leadership import election as election_module
from atmosphere.scheduler.leadership.election import Election
from atmosphere.scheduler.leadership.lease import Lease
from atmosphere.testing import MemoryDatabase

PATHS = Paths("atm")
LEASE = 0.4


class Partitionable:
    """A MemoryDatabase view that can be cut off from the database (streams keep running)."""

    def __init__(
        self,
        db: MemoryDatabase,
        methods: tuple[str, ...] = ("transaction", "update", "get", "set", "delete"),
    ) -> None:
        self._db = db
        self._methods = methods
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)
        if name in self._methods and callable(attr):

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
        stored = db.get("atm/live/lease")
        assert Lease.from_json(stored) == Lease(leader.me, 1, stored["expires"] / 1000)
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


def test_a_presence_heartbeat_keeps_the_dispatchers_write_marker(db: MemoryDatabase) -> None:
    # Given a dispatcher's record holding the write marker of its last batch
    me = dispatcher_id()
    e = election(db, me)
    db.update(PATHS.dispatchers(me), {"role": "leader", "seq": "run:7"})
    # When the election refreshes its presence
    e._heartbeat()
    # Then the record is refreshed by sub-key, and the marker is still there
    record = db.get(PATHS.dispatchers(me))
    assert record["seq"] == "run:7" and record["role"] == "standby" and record["heartbeat"]


def test_dispatcher_ids_are_keys_and_unique_per_process_start() -> None:
    first, second = dispatcher_id(), dispatcher_id()
    assert first != second
    assert not set(".$#[]/") & set(first)


class _Recorder(logging.Handler):
    """Collects the election's log records and wakes a waiter on each one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[list[logging.LogRecord]], bool], timeout: float) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.records), timeout), [
                r.getMessage() for r in self.records
            ]


@pytest.fixture
def election_log() -> Iterator[_Recorder]:
    recorder = _Recorder()
    logger = logging.getLogger("atmosphere.scheduler.leadership.election")
    logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)


def _errors(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno == logging.ERROR]


def test_a_lease_nobody_can_write_is_an_error_with_the_reason_every_few_seconds(
    db: MemoryDatabase, election_log: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(election_module, "LEASE_TROUBLE_EVERY", 0.2)
    refused = Partitionable(db, methods=("transaction",))  # only the lease is unwritable
    refused.cut = True
    a = election(refused, "a")
    a.start()
    try:
        election_log.wait(lambda rs: len(_errors(rs)) >= 3, timeout=10)
        errors = _errors(election_log.records)
        assert all("partitioned" in r.getMessage() for r in errors)  # the cause is named
        assert "no job is dispatched" in errors[0].getMessage()
        gaps = [b.created - a.created for a, b in itertools.pairwise(errors)]
        assert min(gaps) >= 0.15, "rate-limited, not one ERROR per attempt"
        assert not a.is_leader()
        refused.cut = False
        assert a.wait_leader(5)
        election_log.wait(
            lambda rs: any("can write the lease again" in r.getMessage() for r in rs), timeout=5
        )
        assert a.lease_failures == 0
    finally:
        refused.cut = False
        a.stop()


def test_a_leader_that_cannot_renew_warns_then_errors_then_steps_down(
    db: MemoryDatabase, election_log: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(election_module, "LEASE_TROUBLE_EVERY", 0.0)
    refused = Partitionable(db, methods=("transaction",))
    a = election(refused, "a")
    a.start()
    try:
        assert a.wait_leader(5)
        refused.cut = True
        wait_for(lambda: not a.is_leader())
        election_log.wait(lambda rs: bool(_errors(rs)), timeout=5)
        first_failure = next(r for r in election_log.records if "renew" in r.getMessage())
        assert first_failure.levelno == logging.WARNING  # one blip is not yet an emergency
        assert "cannot renew" in _errors(election_log.records)[0].getMessage()
    finally:
        refused.cut = False
        a.stop()
