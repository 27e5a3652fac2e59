"""Compaction writes its snapshot in a worker thread: writes go on meanwhile, in place only
where the snapshot cannot see it, and a crash at any point loses no acknowledged write."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.localdb.store import Store, encode_pieces
from atmosphere.rtdb import tree

keys = st.text(min_size=1, max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=80),
    max_leaves=150,
)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_pieces_join_to_what_orjson_writes(value: Any) -> None:
    assert b"".join(encode_pieces(value)) == orjson.dumps(value)


def test_no_piece_holds_a_wide_object_whole() -> None:
    jobs = {f"j{n:05}": {"n": n, "data": {"x": [1, 2]}} for n in range(5_000)}
    pieces = list(encode_pieces({"seq": 1, "namespaces": {"a": {"atm": {"jobs": jobs}}}}))
    assert max(len(p) for p in pieces) < 100


def _admin_write(store: Store, ns: str, path: list[str], value: object) -> None:
    """What the server does for an admin write: log, then change the tree in place."""
    n = store.namespace(ns)
    writes = [(path, value)]
    store.log(n, writes)
    store.make_current(n, tree.apply_in_place(n.root, writes, store.owned()))


class HeldSnapshot:
    """Holds the first snapshot write until released (then runs it, or dies)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, die: bool = False) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.real = Store._write_snapshot
        self.die = die

        def write(store: Store, state: dict[str, Any], seq: int) -> None:
            self._write(store, state, seq)

        monkeypatch.setattr(Store, "_write_snapshot", write)

    def _write(self, store: Store, state: dict[str, Any], seq: int) -> None:
        if self.started.is_set():
            return self.real(store, state, seq)  # a later one (on close, say)
        self.started.set()
        assert self.release.wait(10), "the snapshot was never released"
        if self.die:
            (store.dir / "snapshot.json.tmp").write_bytes(b'{"seq": 9, "namespa')  # torn
            return  # killed before the rename
        self.real(store, state, seq)


def test_writes_go_on_while_the_snapshot_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSnapshot(monkeypatch)
    store = Store(tmp_path, compact_after_bytes=2_000)
    store.open()
    # Given a database whose log crosses the threshold at the last of these writes
    for i in range(100):
        _admin_write(store, "a", ["jobs", f"j{i:03}"], {"n": i, "pad": "x" * 20})
        if held.started.is_set():
            break
    assert held.started.wait(10), "no compaction started"
    at_snapshot = orjson.loads(orjson.dumps(store.namespace("a").root))
    # When more writes come while the snapshot is still being written (held here)
    done = threading.Event()

    def more() -> None:
        for i in range(50):
            _admin_write(store, "a", ["jobs", f"k{i:03}"], {"n": i})
            _admin_write(store, "a", ["jobs", "j000", "n"], -i)  # below what the snapshot reads
        done.set()

    writer = threading.Thread(target=more)
    writer.start()
    # I expect them all to be answered without waiting for the snapshot
    assert done.wait(10), "writes waited for the snapshot"
    writer.join()
    held.release.set()
    store._compaction.thread.join(10)  # type: ignore[union-attr]
    # ...the snapshot to hold the tree as it was when it started, untouched by them
    snapshot = orjson.loads((tmp_path / "snapshot.json").read_bytes())
    assert snapshot["namespaces"]["a"] == at_snapshot
    # ...and a restart to find everything
    expected = orjson.loads(orjson.dumps(store.namespace("a").root))
    assert len(expected["jobs"]) > len(at_snapshot["jobs"])
    os.close(store._lock_fd)
    again = Store(tmp_path)
    again.open()
    assert again.namespace("a").root == expected
    again.close()


def test_a_crash_during_the_background_snapshot_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSnapshot(monkeypatch, die=True)
    store = Store(tmp_path, compact_after_bytes=2_000)
    store.open()
    acknowledged: dict[str, Any] = {}
    for i in range(100):
        _admin_write(store, "a", [f"k{i:03}"], {"n": i, "pad": "y" * 20})
        acknowledged[f"k{i:03}"] = {"n": i, "pad": "y" * 20}
        if held.started.is_set():
            break
    assert held.started.wait(10), "no compaction started"
    for i in range(20):  # acknowledged while the snapshot is half written
        _admin_write(store, "a", [f"m{i:03}"], i)
        acknowledged[f"m{i:03}"] = i
    # The process dies: the snapshot is left torn, its logs are all there.
    held.release.set()
    store._compaction.thread.join(10)  # type: ignore[union-attr]
    os.close(store._lock_fd)
    assert (tmp_path / "snapshot.json.tmp").exists()
    again = Store(tmp_path)
    again.open()
    assert again.namespace("a").root == acknowledged
    again.close()


def test_a_failed_background_snapshot_is_an_error_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path, compact_after_bytes=200)
    store.open()
    (tmp_path / "snapshot.json.tmp").mkdir()  # the snapshot cannot be written
    for i in range(20):
        _admin_write(store, "a", [f"k{i}"], "z" * 50)
        if store._compaction is not None:
            store._compaction.thread.join(10)  # type: ignore[union-attr]
    assert any(r.levelname == "ERROR" and "compaction" in r.getMessage() for r in caplog.records)
    (tmp_path / "snapshot.json.tmp").rmdir()
    for i in range(20):
        _admin_write(store, "a", [f"k{i}"], i)
        if store._compaction is not None:
            store._compaction.thread.join(10)  # type: ignore[union-attr]
    assert (tmp_path / "snapshot.json").exists()
    store.close()
