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

from atmosphere.localdb.store import Store, compaction_due, encode_pieces
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

        def write(store: Store, state: dict[str, Any], seq: int) -> int:
            return self._write(store, state, seq)

        monkeypatch.setattr(Store, "_write_snapshot", write)

    def _write(self, store: Store, state: dict[str, Any], seq: int) -> int:
        if self.started.is_set():
            return self.real(store, state, seq)  # a later one (on close, say)
        self.started.set()
        assert self.release.wait(10), "the snapshot was never released"
        if self.die:
            (store.dir / "snapshot.json.tmp").write_bytes(b'{"seq": 9, "namespa')  # torn
            return 0  # killed before the rename
        return self.real(store, state, seq)


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


@given(st.integers(0, 2**40), st.integers(0, 2**40), st.integers(1, 2**30))
def test_compaction_is_due_once_the_log_outgrows_the_snapshot_and_the_floor(
    log_bytes: int, snapshot_bytes: int, floor: int
) -> None:
    due = compaction_due(log_bytes, snapshot_bytes, floor)
    assert due == (log_bytes >= floor and log_bytes >= snapshot_bytes)


def _wait_compaction(store: Store) -> None:
    if store._compaction is not None:
        store._compaction.thread.join(10)  # type: ignore[union-attr]
        store._finish_compaction()


def test_the_log_grows_as_large_as_the_last_snapshot_before_the_next(tmp_path: Path) -> None:
    """A restart reads at most about twice the data: a snapshot, and a log no larger."""
    store = Store(tmp_path, compact_after_bytes=1_000)
    store.open()
    for i in range(50):  # 50 distinct keys: the data (and so each snapshot) grows to ~5 KB
        _admin_write(store, "a", [f"k{i:03}"], "v" * 80)
        _wait_compaction(store)
    snapshot = (tmp_path / "snapshot.json").stat().st_size
    assert snapshot > 3_000  # well above the floor
    assert store._snapshot_bytes == snapshot
    # Rewriting one key: the data stays the same size while the log grows.
    for i in range(200):
        seq, logged = store._seq, store._log_bytes
        _admin_write(store, "a", ["k000"], f"{i:080}")  # a record of ~100 bytes
        _wait_compaction(store)
        if store._seq != seq:
            break
    else:
        pytest.fail("no compaction in 200 writes of ~100 bytes")
    # It came once the log reached the snapshot's size, not at the 1,000-byte floor.
    assert snapshot - 200 < logged < snapshot
    store.close()


def test_a_restored_snapshot_sets_how_long_the_log_may_grow(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_after_bytes=1)
    store.open()
    _admin_write(store, "a", ["big"], "x" * 10_000)
    _wait_compaction(store)
    store.close()
    size = (tmp_path / "snapshot.json").stat().st_size
    again = Store(tmp_path, compact_after_bytes=1)
    again.open()
    assert again._snapshot_bytes == size
    _admin_write(again, "a", ["small"], 1)
    assert again._compaction is None and again._seq == again._log_numbers()[-1]
    again.close()


def test_a_store_says_how_much_it_restored(tmp_path: Path) -> None:
    fresh = Store(tmp_path)
    fresh.open()
    assert fresh.restored_bytes == 0  # nothing to say: the server prints no restore line
    _admin_write(fresh, "a", ["k"], "v" * 2_000_000)
    os.close(fresh._lock_fd)  # killed: the log is all there is
    again = Store(tmp_path)
    again.open()
    assert again.replayed_bytes > 2_000_000 and again.restored_bytes == again.replayed_bytes
    assert (
        again.restored() == f"0.0 MB of snapshot and {again.replayed_bytes / 2**20:.1f} MB of log"
    )
    again.close()
    third = Store(tmp_path)  # the clean close left one snapshot
    third.open()
    assert third.replayed_bytes == 0 and third.restored_bytes > 2_000_000
    third.close()
