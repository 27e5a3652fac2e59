"""Unit tests of the durable store (atmosphere.localdb.store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atmosphere.localdb import tree
from atmosphere.localdb.store import DataDirInUse, Store


def _write(store: Store, ns: str, path: list[str], value: object) -> None:
    n = store.namespace(ns)
    writes = [(path, value)]
    store.commit(n, writes, tree.set_many(n.root, writes))


def test_reopen_restores_logs_and_snapshots(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_after_bytes=200)
    store.open()
    for i in range(50):
        _write(store, "a", ["k", str(i % 7)], i)
    store.set_rules_text(store.namespace("a"), '{"rules": {}}')
    _write(store, "b", ["x"], {"y": "z"})
    expected = {n: ns.root for n, ns in store.namespaces.items()}
    compactor = store._compactor
    if compactor is not None:
        compactor.join()
    assert (tmp_path / "snapshot.json").exists()
    # Simulate a crash: no close(), just drop the lock.
    import os

    os.close(store._lock_fd)
    store._lock_fd = -1
    again = Store(tmp_path)
    again.open()
    assert {n: ns.root for n, ns in again.namespaces.items() if ns.root is not None} == expected
    assert again.namespace("a").rules_text == '{"rules": {}}'
    again.close()


def test_close_compacts_to_one_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    _write(store, "a", ["k"], 1)
    store.close()
    logs = list(tmp_path.glob("log.*"))
    assert all(p.stat().st_size == 0 for p in logs)
    again = Store(tmp_path)
    again.open()
    assert again.namespace("a").root == {"k": 1}
    again.close()


def test_the_directory_is_locked(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    with pytest.raises(DataDirInUse):
        Store(tmp_path).open()
    store.close()
    other = Store(tmp_path)
    other.open()
    other.close()


def test_the_write_that_triggers_compaction_survives(tmp_path: Path) -> None:
    import os

    store = Store(tmp_path, compact_after_bytes=1)  # every commit compacts
    store.open()
    for i in range(5):
        _write(store, "a", [f"k{i}"], i)  # each key written once: nothing overwrites it
        compactor = store._compactor
        if compactor is not None:
            compactor.join()
    os.close(store._lock_fd)  # a crash: no close()
    store._lock_fd = -1
    again = Store(tmp_path)
    again.open()
    assert again.namespace("a").root == {f"k{i}": i for i in range(5)}
    again.close()


def test_a_failed_log_write_leaves_the_log_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    store = Store(tmp_path)
    store.open()
    _write(store, "a", ["before"], 1)
    real_write = os.write
    calls = {"n": 0}

    def flaky_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[:5])  # a partial record...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", flaky_write)
    with pytest.raises(OSError):
        _write(store, "a", ["lost"], 2)
    monkeypatch.setattr(os, "write", real_write)
    assert store.namespace("a").root == {"before": 1}
    _write(store, "a", ["after"], 3)
    os.close(store._lock_fd)  # a crash: no close()
    store._lock_fd = -1
    again = Store(tmp_path)
    again.open()
    assert again.namespace("a").root == {"before": 1, "after": 3}
    again.close()
