"""MemoryDatabase: the in-memory Database used by unit tests of cloud and dispatcher logic."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from atmosphere.db.base import SERVER_TIMESTAMP, Database, increment
from atmosphere.errors import DatabaseError
from atmosphere.testing import EventRecorder, MemoryDatabase, events_for

USERS = {
    "alice": {"age": 19, "stats": {"level": 3}},
    "bob": {"age": 23, "stats": {"level": 4}},
    "carol": {"age": 19, "stats": {"level": 1}},
    "dave": {"age": 27, "stats": {"level": 5}},
    "erin": {"age": 35, "stats": {"level": 2}},
    "frank": {"age": 42, "stats": {"level": 6}},
}
SCORES = {"alice": 64, "bob": 90, "carol": 15, "dave": 72, "erin": 88, "frank": 40}


@pytest.fixture
def db() -> Any:
    d = MemoryDatabase(clock=lambda: 1_700_000_000.123)
    yield d
    d.close()


def test_is_a_database(db: MemoryDatabase) -> None:
    typed: Database = db
    assert typed.get("x") is None


def test_set_get_and_tree_semantics(db: MemoryDatabase) -> None:
    db.set("a/b", {"c": 1, "d": None, "e": {}})
    assert db.get("a") == {"b": {"c": 1}}
    assert db.get("/a/b/c/") == 1
    db.delete("a/b/c")
    assert db.get("a") is None  # empty parents vanish
    db.set("s", "")
    assert db.get("s") == ""
    db.set("s/t", 1)  # writing below a primitive replaces it
    assert db.get("") == {"s": {"t": 1}}


def test_values_are_copied_in_and_out(db: MemoryDatabase) -> None:
    value = {"x": {"y": 1}}
    db.set("v", value)
    value["x"]["y"] = 2
    got = db.get("v")
    got["x"]["y"] = 3
    assert db.get("v/x/y") == 1


def test_arrays_round_trip_like_firebase(db: MemoryDatabase) -> None:
    db.set("l", [1, None, 3])
    assert db.get("l") == [1, None, 3]
    db.set("m", {"1": "a", "2": "b"})
    assert db.get("m") == [None, "a", "b"]
    db.set("o", {"0": "a", "5": "b"})
    assert db.get("o") == {"0": "a", "5": "b"}


def test_shallow(db: MemoryDatabase) -> None:
    db.set("u", USERS)
    assert db.get("u", shallow=True) == {k: True for k in USERS}
    assert db.get("u/bob/age", shallow=True) == 23
    assert db.get("nothing", shallow=True) is None


@pytest.mark.parametrize("bad", ["a.b", "a$", "a#", "a[0]", "x/\x01"])
def test_invalid_keys_are_refused(db: MemoryDatabase, bad: str) -> None:
    with pytest.raises(DatabaseError):
        db.set(bad, 1)
    with pytest.raises(DatabaseError):
        db.set("ok", {bad.replace("/", ""): 1})
    assert db.get("") is None


def test_update_is_multi_path_and_replaces_each_entry(db: MemoryDatabase) -> None:
    db.set("r", {"a": {"x": 1, "y": 2}, "b": 1, "c": 1})
    db.update("r", {"a": {"z": 3}, "b": None, "d/e": 4})
    assert db.get("r") == {"a": {"z": 3}, "c": 1, "d": {"e": 4}}


def test_update_refuses_overlapping_paths_and_writes_nothing(db: MemoryDatabase) -> None:
    db.set("r/a", 1)
    with pytest.raises(DatabaseError, match="ancestor"):
        db.update("r", {"a": 2, "a/b": 3})
    with pytest.raises(DatabaseError):
        db.update("r", {"b": 2, "c.d": 3})
    assert db.get("r") == {"a": 1}


def test_server_values(db: MemoryDatabase) -> None:
    db.set("t", {"at": SERVER_TIMESTAMP, "n": increment(2)})
    assert db.get("t") == {"at": 1_700_000_000_123, "n": 2}
    db.update("t", {"n": increment(3), "m/k": increment(1.5)})
    assert db.get("t") == {"at": 1_700_000_000_123, "n": 5, "m": {"k": 1.5}}
    with pytest.raises(DatabaseError, match="server value"):
        db.set("t/bad", {".sv": "nope"})


def test_push_ids_are_chronological_and_firebase_shaped(db: MemoryDatabase) -> None:
    ids = [db.push("q", i) for i in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(len(i) == 20 for i in ids)
    assert list(db.get("q").keys()) == ids
    assert db.new_id() > ids[-1]


def test_transaction(db: MemoryDatabase) -> None:
    db.set("c", 1)

    def bump(v: Any) -> Any:
        return (v or 0) + 1

    threads = [
        threading.Thread(target=lambda: [db.transaction("c", bump) for _ in range(50)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.get("c") == 201
    assert db.transaction("c", lambda v: None) is None
    assert db.get("c") is None


@pytest.mark.parametrize(
    ("path", "kwargs", "keys"),
    [
        ("users", {"order_by": "age", "limit_to_first": 2}, ["alice", "carol"]),
        ("users", {"order_by": "age", "start_at": 30}, ["erin", "frank"]),
        ("users", {"order_by": "age", "equal_to": 19}, ["alice", "carol"]),
        ("users", {"order_by": "stats/level", "limit_to_last": 2}, ["dave", "frank"]),
        ("users", {"order_by": "$key", "start_at": "c", "end_at": "e"}, ["carol", "dave"]),
        ("scores", {"order_by": "$value", "limit_to_last": 2}, ["erin", "bob"]),
        ("scores", {"order_by": "$value", "end_at": 40}, ["carol", "frank"]),
        ("missing", {"order_by": "$key"}, []),
    ],
)
def test_query(db: MemoryDatabase, path: str, kwargs: dict[str, Any], keys: list[str]) -> None:
    db.set("users", USERS)
    db.set("scores", SCORES)
    result = db.query(path, **kwargs)
    assert list(result) == keys
    source = USERS if path == "users" else SCORES
    assert all(result[k] == source[k] for k in keys)


def test_query_orders_keys_and_types_like_firebase(db: MemoryDatabase) -> None:
    db.set("k", {"10": 1, "9": 1, "b": 1, "a": 1, "-1": 1})
    assert list(db.query("k", order_by="$key")) == ["-1", "9", "10", "a", "b"]
    db.set("v", {"s": "x", "n": 2, "t": True, "f": False, "o": {"z": 1}, "m": 1.5})
    assert list(db.query("v", order_by="$value")) == ["f", "t", "m", "n", "s", "o"]
    assert list(db.query("v", order_by="$value", start_at=2)) == ["n", "s", "o"]


def test_query_rejects_bad_arguments(db: MemoryDatabase) -> None:
    with pytest.raises(DatabaseError):
        db.query("x", order_by="$priority")
    with pytest.raises(DatabaseError):
        db.query("x", order_by="a", limit_to_first=1, limit_to_last=1)
    with pytest.raises(DatabaseError):
        db.query("x", order_by="a", limit_to_first=0)


def test_listener_sees_initial_put_then_changes_in_order(db: MemoryDatabase) -> None:
    db.set("live/a", 1)
    rec = EventRecorder()
    listener = db.listen("live", rec.on_event, on_status=rec.on_status)
    assert listener.wait_connected(5)
    db.set("live/b", {"x": 1})
    db.update("live", {"a": 2, "c": None})
    db.update("live", {"b/x": 3, "d/e": 4})
    db.set("", {"live": {"z": 1}, "other": 1})
    db.set("other", 2)  # unrelated: no event
    db.set("live/z", 1)  # no change: no event
    db.delete("live")
    events = rec.wait_events(6)
    db.drain()
    assert rec.events == [
        ("put", "/", {"a": 1}),
        ("put", "/b", {"x": 1}),
        ("patch", "/", {"a": 2}),  # only what changed: "c" was absent
        ("patch", "/", {"b/x": 3, "d/e": 4}),  # one commit, one event
        ("put", "/", {"z": 1}),
        ("put", "/", None),
    ]
    assert events[:6] == rec.events
    assert rec.statuses == [True]


def test_events_for_patch_below_listener_is_relative() -> None:
    before = {"l": {"w": {"a": 1}}}
    after = {"l": {"w": {"a": 2, "b": 3}}}
    entries: dict[tuple[str, ...], Any] = {("a",): 2, ("b",): 3}
    assert events_for(("l",), ("l", "w"), entries, before, after, True) == [
        ("patch", "/w", {"a": 2, "b": 3})
    ]
    assert events_for(("l", "w", "a"), ("l", "w"), entries, before, after, True) == [
        ("put", "/", 2)
    ]
    assert events_for(("m",), ("l", "w"), entries, before, after, True) == []


def test_disconnect_and_reconnect_resync(db: MemoryDatabase) -> None:
    rec = EventRecorder()
    listener = db.listen("p", rec.on_event, on_status=rec.on_status)
    assert listener.wait_connected(5)
    db.disconnect()
    db.set("p/missed", 1)  # another writer while we are cut off
    db.drain()
    assert not listener.connected
    assert rec.statuses == [True, False]
    db.reconnect()
    assert listener.wait_connected(5)
    db.drain()
    assert rec.events == [("put", "/", None), ("put", "/", {"missed": 1})]
    assert rec.statuses == [True, False, True]


def test_disconnected_block_fails_writes(db: MemoryDatabase) -> None:
    with db.disconnected():
        with pytest.raises(DatabaseError, match="simulated"):
            db.set("a", 1)
    db.set("a", 1)
    db.fail_reads = ConnectionError("boom")
    with pytest.raises(ConnectionError):
        db.get("a")


def test_close_stops_callbacks(db: MemoryDatabase) -> None:
    rec = EventRecorder()
    listener = db.listen("c", rec.on_event)
    rec.wait_events(1)
    listener.close()
    db.set("c", 1)
    assert rec.events == [("put", "/", None)]
    db.close()
    with pytest.raises(DatabaseError, match="closed"):
        db.get("c")


def test_a_failing_callback_does_not_kill_the_stream(
    db: MemoryDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    rec = EventRecorder()

    def flaky(kind: str, path: str, data: Any) -> None:
        rec.on_event(kind, path, data)
        if path == "/bad":
            raise RuntimeError("handler bug")

    db.listen("", flaky)
    db.set("bad", 1)
    db.set("good", 1)
    assert rec.wait_events(3)[-1] == ("put", "/good", 1)
    assert "listener callback failed" in caplog.text


def test_on_batch_ends_every_run_of_events_before_a_drain_returns(db: MemoryDatabase) -> None:
    rec = EventRecorder()
    db.listen("live", rec.on_event, on_status=rec.on_status, on_batch=rec.on_batch)
    db.drain()
    for n in range(20):
        db.set(f"live/n{n}", n)
    db.drain()
    # Each batch ends after at least one new event, and the last ends after the last event.
    assert rec.batches == sorted(set(rec.batches))
    assert rec.batches[0] >= 1
    assert rec.batches[-1] == len(rec.events) == 21
