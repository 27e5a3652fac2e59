"""One contract, every backend (Huey's storage tests): what a ``Database`` does, checked the
same way on ``MemoryDatabase``, the embedded server (a real process, through
``FirebaseDatabase`` and firebase-admin) and, when configured, the official emulator or a real
Firebase database.

- ``ATMOSPHERE_CONTRACT_EMULATOR=host:port``: also run against a running official emulator.
- ``ATMOSPHERE_CONTRACT_FIREBASE=1``: also run against the real database that
  ``ATMOSPHERE_DATABASE_URL`` and ``GOOGLE_APPLICATION_CREDENTIALS`` name (writes below
  ``contract/``).

Each test gets a fresh location (a namespace, or a fresh path on a shared database).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atmosphere.db.base import SERVER_TIMESTAMP, Database, increment
from atmosphere.db.client import FirebaseDatabase
from atmosphere.errors import DatabaseError, RequestRefused
from atmosphere.rtdb.pushid import PUSH_CHARS
from atmosphere.testing import EventRecorder, MemoryDatabase
from tests.support import ServerProcess, unique_ns

EMULATOR = os.environ.get("ATMOSPHERE_CONTRACT_EMULATOR")
FIREBASE = os.environ.get("ATMOSPHERE_CONTRACT_FIREBASE") == "1"

# Keys in Firebase's key order (nameCompare, firebase-js-sdk util.ts): int32-like keys first,
# numerically, a shorter spelling of the same number first; then strings by UTF-16 code units,
# so U+1F600 (a surrogate pair, D83D DE00) sorts before U+FFFF.
KEYS_IN_ORDER = [
    "-2147483648",
    "-1",
    "7",
    "007",
    "9",
    "10",
    "2147483647",
    "-2147483649",
    "2147483648",
    "a",
    "ab",
    "b",
    "\U0001f600",
    "\uffff",
]


class At:
    """A backend's database and this test's root below which every path is written."""

    def __init__(self, db: Database, root: str) -> None:
        self.db = db
        self.root = root

    def p(self, path: str = "") -> str:
        """The full path of ``path`` below this test's root."""
        return f"{self.root}/{path}".rstrip("/")


@pytest.fixture(params=["memory", "embedded", "emulator", "firebase"])
def at(request: pytest.FixtureRequest) -> Iterator[At]:
    """This test's backend (skipped when it is not configured) and a fresh root."""
    kind = request.param
    root = f"contract/{uuid.uuid4().hex[:12]}"
    db: Any
    if kind == "memory":
        db = MemoryDatabase()
    elif kind == "embedded":
        server: ServerProcess = request.getfixturevalue("db_server")
        db = FirebaseDatabase(server.db_url(unique_ns("contract")))
    elif kind == "emulator":
        if not EMULATOR:
            pytest.skip("set ATMOSPHERE_CONTRACT_EMULATOR=host:port to run on the emulator")
        db = FirebaseDatabase(f"http://{EMULATOR}?ns={unique_ns('contract')}")
    else:
        if not FIREBASE:
            pytest.skip("set ATMOSPHERE_CONTRACT_FIREBASE=1 to run on real Firebase")
        from atmosphere.db.connect import connect
        from atmosphere.settings import Settings

        db = connect(Settings.from_env())
    try:
        yield At(db, root)
    finally:
        if kind == "firebase":
            db.delete(root)
        db.close()


# -- set, get, delete ----------------------------------------------------------------------


def test_an_absent_location_reads_null(at: At) -> None:
    assert at.db.get(at.p("nothing/here")) is None


@pytest.mark.parametrize("value", ["text", 0, -7, 2**53, 1.5, True, False, "\U0001f600 \uffff"])
def test_a_primitive_round_trips(at: At, value: Any) -> None:
    at.db.set(at.p("v"), value)
    got = at.db.get(at.p("v"))
    assert got == value and type(got) is type(value)


def test_an_object_reads_whole_and_by_child(at: At) -> None:
    at.db.set(at.p("o"), {"a": {"b": 1, "c": "x"}, "d": True})
    assert at.db.get(at.p("o")) == {"a": {"b": 1, "c": "x"}, "d": True}
    assert at.db.get(at.p("o/a/c")) == "x"
    assert at.db.get(at.p("o/a/c/below")) is None


def test_nulls_and_empty_objects_are_not_stored(at: At) -> None:
    at.db.set(at.p("o"), {"a": None, "b": {}, "c": {"d": None}, "e": 1})
    assert at.db.get(at.p("o")) == {"e": 1}


def test_a_set_replaces_the_whole_subtree(at: At) -> None:
    at.db.set(at.p("o"), {"a": 1, "b": 2})
    at.db.set(at.p("o"), {"c": 3})
    assert at.db.get(at.p("o")) == {"c": 3}


def test_array_like_objects_read_as_lists(at: At) -> None:
    at.db.set(at.p("l"), ["x", "y", "z"])
    at.db.set(at.p("sparse"), {"0": "a", "2": "c"})  # max key < 2 x count: a list
    at.db.set(at.p("wide"), {"0": "a", "5": "f"})  # otherwise an object
    assert at.db.get(at.p("l")) == ["x", "y", "z"]
    assert at.db.get(at.p("l/1")) == "y"
    assert at.db.get(at.p("sparse")) == ["a", None, "c"]
    assert at.db.get(at.p("wide")) == {"0": "a", "5": "f"}


def test_shallow_gives_children_as_true(at: At) -> None:
    at.db.set(at.p("s"), {"a": {"b": 1}, "c": 2})
    assert at.db.get(at.p("s"), shallow=True) == {"a": True, "c": True}
    assert at.db.get(at.p("s/c"), shallow=True) == 2


def test_delete_removes_and_prunes_empty_parents(at: At) -> None:
    at.db.set(at.p("a/b/c"), 1)
    at.db.set(at.p("keep"), 1)
    at.db.delete(at.p("a/b/c"))
    assert at.db.get(at.p("a")) is None
    assert at.db.get(at.p()) == {"keep": 1}


def test_astral_and_unusual_keys_round_trip(at: At) -> None:
    value = {"\U0001f600": 1, "é": 2, "007": 3, "-1": 4, "a b": 5}
    at.db.set(at.p("k"), value)
    assert at.db.get(at.p("k")) == value
    assert at.db.get(at.p("k/\U0001f600")) == 1


@pytest.mark.parametrize("key", ["a.b", "a$", "a#", "a[", "a]"])
def test_a_forbidden_key_is_refused(at: At, key: str) -> None:
    with pytest.raises(RequestRefused):
        at.db.set(at.p("bad"), {key: 1})
    assert at.db.get(at.p("bad")) is None


def test_data_nested_beyond_32_levels_is_refused(at: At) -> None:
    deep: Any = 1
    for _ in range(33):
        deep = {"d": deep}
    with pytest.raises(RequestRefused):
        at.db.set(at.p("deep"), deep)


# -- update --------------------------------------------------------------------------------


def test_a_multi_path_update_writes_every_path_and_nothing_else(at: At) -> None:
    at.db.set(at.p("u"), {"a": {"x": 1, "y": 2}, "b": 1, "c": 1})
    at.db.update(at.p("u"), {"a/x": 10, "b": None, "d/e": "new"})
    assert at.db.get(at.p("u")) == {"a": {"x": 10, "y": 2}, "c": 1, "d": {"e": "new"}}


def test_overlapping_update_paths_are_refused(at: At) -> None:
    with pytest.raises(RequestRefused):
        at.db.update(at.p("u"), {"a": {"b": 1}, "a/b": 2})
    assert at.db.get(at.p("u")) is None


# -- server values -------------------------------------------------------------------------


def test_the_server_timestamp_resolves_to_milliseconds_now(at: At) -> None:
    before = time.time() * 1000
    at.db.set(at.p("t"), {"at": SERVER_TIMESTAMP})
    stamp = at.db.get(at.p("t/at"))
    assert isinstance(stamp, int)
    assert before - 5_000 <= stamp <= time.time() * 1000 + 5_000


def test_increment_adds_and_counts_absent_as_zero(at: At) -> None:
    at.db.update(at.p("n"), {"hits": increment(2), "ratio": increment(0.5)})
    at.db.update(at.p("n"), {"hits": increment(3)})
    assert at.db.get(at.p("n")) == {"hits": 5, "ratio": 0.5}


# -- transactions --------------------------------------------------------------------------


def test_a_transaction_on_nothing_sees_none_and_writes(at: At) -> None:
    seen: list[Any] = []

    def first(current: Any) -> Any:
        seen.append(current)
        return {"n": 1}

    assert at.db.transaction(at.p("tx"), first) == {"n": 1}
    assert seen[-1] is None
    assert at.db.get(at.p("tx")) == {"n": 1}


def test_a_transaction_returning_none_deletes(at: At) -> None:
    at.db.set(at.p("tx"), 1)
    at.db.transaction(at.p("tx"), lambda current: None)
    assert at.db.get(at.p("tx")) is None


def test_concurrent_transactions_lose_no_increment(at: At) -> None:
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(5):
                at.db.transaction(at.p("count"), lambda n: (n or 0) + 1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert at.db.get(at.p("count")) == 20


# -- push ids ------------------------------------------------------------------------------


def test_push_stores_under_a_chronological_id(at: At) -> None:
    ids = [at.db.push(at.p("q"), {"n": i}) for i in range(5)]
    assert all(len(i) == 20 and set(i) <= set(PUSH_CHARS) for i in ids)
    assert ids == sorted(ids)
    stored = at.db.query(at.p("q"), order_by="$key")
    assert list(stored) == ids
    assert [v["n"] for v in stored.values()] == [0, 1, 2, 3, 4]


def test_client_ids_increase_and_key_order_agrees(at: At) -> None:
    ids = [at.db.new_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert ids == sorted(ids)
    at.db.update(at.p("ids"), {i: True for i in reversed(ids)})
    assert list(at.db.query(at.p("ids"), order_by="$key")) == ids


# -- queries -------------------------------------------------------------------------------


def test_keys_order_as_firebase_orders_them(at: At) -> None:
    at.db.set(at.p("k"), {k: True for k in reversed(KEYS_IN_ORDER)})
    assert list(at.db.query(at.p("k"), order_by="$key")) == KEYS_IN_ORDER


def test_key_bounds_and_limits(at: At) -> None:
    at.db.set(at.p("k"), {k: True for k in KEYS_IN_ORDER})
    got = at.db.query(at.p("k"), order_by="$key", start_at="10", end_at="a")
    assert list(got) == ["10", "2147483647", "-2147483649", "2147483648", "a"]
    first = at.db.query(at.p("k"), order_by="$key", limit_to_first=3)
    assert list(first) == KEYS_IN_ORDER[:3]
    last = at.db.query(at.p("k"), order_by="$key", limit_to_last=2)
    assert list(last) == KEYS_IN_ORDER[-2:]


def test_int_like_keys_are_ascii_digits_with_any_leading_zeros(at: At) -> None:
    # util.ts INTEGER_REGEXP_ /^-?(0*)\d{1,10}$/: JavaScript's \d is [0-9] only.
    at.db.set(at.p("k"), {k: True for k in ["x", "\u0661", "2", "0000000000001", "1"]})
    got = at.db.query(at.p("k"), order_by="$key", start_at="1", end_at="2")
    assert list(got) == ["1", "0000000000001", "2"]


def test_values_order_across_types_then_by_key(at: At) -> None:
    at.db.set(
        at.p("v"),
        {
            "o": {"a": 1},
            "s3": "\uffff",
            "s2": "\U0001f600",
            "s": "x",
            "n2": 1,
            "n": 1,
            "m": 0.5,
            "t": True,
            "f": False,
        },
    )
    got = at.db.query(at.p("v"), order_by="$value")
    assert list(got) == ["f", "t", "m", "n", "n2", "s", "s2", "s3", "o"]


def test_a_child_index_puts_missing_children_first(at: At) -> None:
    at.db.set(
        at.p("users"),
        {
            "carol": {"age": 19},
            "bob": {"age": 23},
            "alice": {"age": 19},
            "nobody": {"name": "n"},
            "erin": {"age": "old"},
        },
    )
    got = at.db.query(at.p("users"), order_by="age")
    assert list(got) == ["nobody", "alice", "carol", "bob", "erin"]
    assert got["bob"] == {"age": 23}


def test_child_bounds_equality_and_limits(at: At) -> None:
    at.db.set(at.p("s"), {f"p{i}": {"score": i % 5, "tag": "ab"[i % 2]} for i in range(10)})
    mid = at.db.query(at.p("s"), order_by="score", start_at=1, end_at=2)
    assert list(mid) == ["p1", "p6", "p2", "p7"]
    tagged = at.db.query(at.p("s"), order_by="tag", equal_to="b")
    assert list(tagged) == ["p1", "p3", "p5", "p7", "p9"]
    top = at.db.query(at.p("s"), order_by="score", limit_to_last=2)
    assert list(top) == ["p4", "p9"]
    low = at.db.query(at.p("s"), order_by="score", limit_to_first=3)
    assert list(low) == ["p0", "p5", "p1"]


def test_a_nested_child_index(at: At) -> None:
    at.db.set(at.p("n"), {"a": {"s": {"l": 3}}, "b": {"s": {"l": 1}}, "c": {"s": {"l": 2}}})
    assert list(at.db.query(at.p("n"), order_by="s/l")) == ["b", "c", "a"]


def test_string_values_order_by_utf16_code_units(at: At) -> None:
    at.db.set(at.p("s"), {"bmp": {"v": "\uffff"}, "astral": {"v": "\U00010000"}})
    # U+10000 is D800 DC00 in UTF-16: inside [U+D7FF, U+FFFF], and before U+FFFF.
    got = at.db.query(at.p("s"), order_by="v", start_at="\ud7ff", end_at="\uffff")
    assert list(got) == ["astral", "bmp"]


def test_a_query_on_nothing_is_empty(at: At) -> None:
    assert at.db.query(at.p("none"), order_by="$key") == {}


def test_a_query_with_both_limits_is_refused(at: At) -> None:
    with pytest.raises(DatabaseError):
        at.db.query(at.p("q"), order_by="$key", limit_to_first=1, limit_to_last=1)


# -- listen --------------------------------------------------------------------------------


Events = list[tuple[str, str, Any]]


def _listen(at: At, path: str) -> tuple[EventRecorder, Callable[[], None]]:
    rec = EventRecorder()
    listener = at.db.listen(at.p(path), rec.on_event)
    assert listener.wait_connected(timeout=15)
    return rec, listener.close


def _after(rec: EventRecorder, n: int, write: Callable[[], None]) -> Events:
    """The events after the first ``n``, once ``write`` has happened and one arrived."""
    write()
    return rec.wait_events(n + 1)[n:]


def test_a_listener_starts_with_the_whole_value(at: At) -> None:
    at.db.set(at.p("l"), {"a": 1})
    rec, close = _listen(at, "l")
    try:
        assert rec.wait_events(1)[0] == ("put", "/", {"a": 1})
    finally:
        close()


def test_a_set_below_the_listener_is_a_put_at_its_path(at: At) -> None:
    rec, close = _listen(at, "l")
    try:
        assert rec.wait_events(1) == [("put", "/", None)]
        assert _after(rec, 1, lambda: at.db.set(at.p("l/a/b"), 2)) == [("put", "/a/b", 2)]
        assert _after(rec, 2, lambda: at.db.delete(at.p("l/a"))) == [("put", "/a", None)]
    finally:
        close()


def test_a_set_above_the_listener_is_a_put_at_root(at: At) -> None:
    rec, close = _listen(at, "l/in")
    try:
        rec.wait_events(1)
        event = _after(rec, 1, lambda: at.db.set(at.p("l"), {"in": {"x": 1}, "out": 2}))
        assert event == [("put", "/", {"x": 1})]
    finally:
        close()


def test_an_update_is_one_patch(at: At) -> None:
    at.db.set(at.p("l"), {"a": 1})
    rec, close = _listen(at, "l")
    try:
        rec.wait_events(1)
        event = _after(rec, 1, lambda: at.db.update(at.p("l"), {"a": 2, "b/c": 3}))
        assert event == [("patch", "/", {"a": 2, "b/c": 3})]
    finally:
        close()


def test_a_closed_listener_hears_nothing_more(at: At) -> None:
    rec, close = _listen(at, "l")
    rec.wait_events(1)
    close()
    at.db.set(at.p("l"), 1)
    other, close_other = _listen(at, "l")  # a second listener proves the write landed
    try:
        assert other.wait_events(1) == [("put", "/", 1)]
        assert rec.events == [("put", "/", None)]
    finally:
        close_other()
