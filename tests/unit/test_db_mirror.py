"""apply_event (pure Firebase event semantics) and Mirror (a live local copy of a subtree)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.db.mirror import Mirror, apply_event
from atmosphere.testing import MemoryDatabase


def test_firebase_documented_sequence() -> None:
    tree = apply_event(None, "put", "/", {"a": 1, "b": 2})
    tree = apply_event(tree, "put", "/c", {"foo": True, "bar": False})
    tree = apply_event(tree, "patch", "/c", {"foo": 3, "baz": 4})
    assert tree == {"a": 1, "b": 2, "c": {"foo": 3, "bar": False, "baz": 4}}


@pytest.mark.parametrize(
    ("tree", "kind", "path", "data", "after"),
    [
        ({"a": {"b": 1}}, "put", "/a/b", None, None),  # empty parents vanish
        ({"a": {"b": 1, "c": 2}}, "put", "/a/b", None, {"a": {"c": 2}}),
        ({"a": 1}, "put", "/", None, None),
        ({"a": "x"}, "put", "/a/b", 1, {"a": {"b": 1}}),  # below a primitive
        ({"a": "x"}, "put", "/a/b", None, {"a": "x"}),  # deleting below one changes nothing
        ({"a": {"x": 1, "y": 2}}, "patch", "/", {"a": {"z": 3}}, {"a": {"z": 3}}),
        ({"a": {"x": 1, "y": 2}}, "patch", "/a", {"x": None, "z": 3}, {"a": {"y": 2, "z": 3}}),
        ({"a": 1}, "patch", "/", {"b/c": 2}, {"a": 1, "b": {"c": 2}}),
        (None, "put", "/l", [1, None, 3], {"l": {"0": 1, "2": 3}}),
        ({"a": 1}, "put", "/b", {"c": None, "d": {}}, {"a": 1}),
    ],
)
def test_apply_event(tree: Any, kind: str, path: str, data: Any, after: Any) -> None:
    assert apply_event(tree, kind, path, data) == after


def test_apply_event_does_not_modify_its_input() -> None:
    tree = {"a": {"b": 1}, "c": {"d": 1}}
    after = apply_event(tree, "put", "/a/b", 2)
    assert tree == {"a": {"b": 1}, "c": {"d": 1}}
    assert after["c"] is tree["c"]  # unchanged subtrees are shared


def test_apply_event_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        apply_event(None, "keep-alive", "/", None)
    with pytest.raises(ValueError):
        apply_event(None, "patch", "/", 3)


def test_mirror_follows_writes_and_calls_on_change_after_applying() -> None:
    db = MemoryDatabase()
    db.set("live/a", 1)
    seen: list[tuple[str, Any]] = []
    holder: list[Mirror] = []

    def on_change(kind: str, path: str, data: Any) -> None:
        if holder:  # the first event may arrive before the constructor returns
            seen.append((path, holder[0].value))  # the mirror is already updated

    mirror = Mirror(db, "live", on_change)
    holder.append(mirror)
    assert mirror.wait_synced(5)
    db.update("live", {"b/c": 2, "a": None})
    db.drain()
    assert mirror.value == {"b": {"c": 2}}
    assert mirror.get("b/c") == 2
    # one commit, one event: the mirror never shows half of the update
    assert seen[-1] == ("/", {"b": {"c": 2}})
    assert ("/b/c", {"a": 1, "b": {"c": 2}}) not in seen
    copy = mirror.value
    copy["b"]["c"] = 99
    assert mirror.get("b") == {"c": 2}
    mirror.close()
    db.close()


def test_mirror_resyncs_after_a_drop() -> None:
    db = MemoryDatabase()
    statuses: list[bool] = []
    mirror = Mirror(db, "x", on_status=statuses.append)
    assert mirror.wait_synced(5)
    db.disconnect()
    db.set("x/while-away", 1)
    db.drain()
    assert not mirror.synced and mirror.value is None
    db.reconnect()
    assert mirror.wait_for(lambda tree: tree == {"while-away": 1}, 5)
    assert mirror.wait_synced(5)
    assert statuses == [True, False, True]
    db.close()


_keys = st.sampled_from(["a", "b", "c", "0", "1"])
_paths = st.lists(_keys, min_size=0, max_size=3).map("/".join)
_values = st.recursive(
    st.none() | st.integers(-3, 3) | st.sampled_from(["", "s"]) | st.booleans(),
    lambda kids: st.dictionaries(_keys, kids, max_size=3) | st.lists(kids, max_size=3),
    max_leaves=6,
)
_writes = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _paths, _values),
        st.tuples(
            st.just("update"),
            _paths,
            st.dictionaries(st.lists(_keys, min_size=1, max_size=2).map("/".join), _values),
        ),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(writes=_writes, where=st.sampled_from(["", "a", "a/b"]))
def test_mirror_equals_get_after_any_writes(writes: list[tuple[str, str, Any]], where: str) -> None:
    db = MemoryDatabase()
    try:
        mirror = Mirror(db, where)
        for op, path, value in writes:
            try:
                if op == "set":
                    db.set(path, value)
                else:
                    db.update(path, value)
            except Exception:
                pass  # overlapping update paths are refused; nothing was written
        db.drain()
        assert mirror.value == db.get(where)
    finally:
        db.close()


def test_concurrent_readers_see_consistent_snapshots() -> None:
    db = MemoryDatabase()
    mirror = Mirror(db, "p")
    stop = threading.Event()
    bad: list[Any] = []

    def read() -> None:
        while not stop.is_set():
            value = mirror.value
            if value is not None and value["x"] != value["y"]:
                bad.append(value)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(300):
        db.update("p", {"x": i, "y": i})
    db.drain()
    stop.set()
    reader.join()
    assert mirror.value == {"x": 299, "y": 299}
    assert bad == []
    db.close()
