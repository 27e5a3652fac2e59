"""Unit tests of the durable store (atmosphere.localdb.store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atmosphere.localdb.store import DataDirInUse, Store
from atmosphere.rtdb import tree


def _crash_and_reopen(store: Store) -> Store:
    """Drop the store as a killed server would (no close(), no final snapshot); reopen it."""
    import os

    running = store._compaction
    if running is not None and running.thread is not None:
        running.thread.join()  # a killed server's compaction thread dies with it, not later
    os.close(store._lock_fd)
    store._lock_fd = -1
    again = Store(store.dir)
    again.open()
    return again


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
    again = _crash_and_reopen(store)
    assert (tmp_path / "snapshot.json").exists()
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
    store = Store(tmp_path, compact_after_bytes=1)  # every commit compacts
    store.open()
    for i in range(5):
        _write(store, "a", [f"k{i}"], i)  # each key written once: nothing overwrites it
    again = _crash_and_reopen(store)
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
    again = _crash_and_reopen(store)
    assert again.namespace("a").root == {"before": 1, "after": 3}
    again.close()


def test_a_failed_compaction_does_not_fail_the_committed_write(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_after_bytes=1)  # every commit compacts
    store.open()
    (tmp_path / "snapshot.json.tmp").mkdir()  # the snapshot cannot be written
    _write(store, "a", ["k"], 1)  # durable in the log: it must not raise after that
    assert store.namespace("a").root == {"k": 1}
    _write(store, "a", ["j"], 2)
    (tmp_path / "snapshot.json.tmp").rmdir()
    again = _crash_and_reopen(store)
    assert again.namespace("a").root == {"k": 1, "j": 2}
    again.close()


def test_a_log_that_cannot_be_rotated_keeps_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    store = Store(tmp_path, compact_after_bytes=1)
    store.open()
    real_open = os.open

    def no_new_log(path: object, flags: int, *args: int) -> int:
        if str(path).rsplit("/", 1)[-1].startswith("log."):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_new_log)
    _write(store, "a", ["k"], 1)
    _write(store, "a", ["j"], 2)  # still logged, to the log that is still open
    monkeypatch.setattr(os, "open", real_open)
    again = _crash_and_reopen(store)
    assert again.namespace("a").root == {"k": 1, "j": 2}
    again.close()


def test_a_torn_record_that_cannot_be_cut_off_does_not_swallow_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    store = Store(tmp_path)
    store.open()
    _write(store, "a", ["before"], 1)
    real_write, real_truncate = os.write, os.ftruncate
    calls = {"n": 0}

    def flaky_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", flaky_write)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        _write(store, "a", ["lost"], 2)
    monkeypatch.setattr(os, "write", real_write)
    monkeypatch.setattr(os, "ftruncate", real_truncate)
    _write(store, "a", ["after"], 3)  # acknowledged: must survive a crash
    again = _crash_and_reopen(store)
    assert again.namespace("a").root == {"before": 1, "after": 3}
    again.close()


def test_close_releases_the_directory_even_when_the_last_snapshot_fails(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    _write(store, "a", ["k"], 1)
    (tmp_path / "snapshot.json.tmp").mkdir()
    store.close()  # must not raise: the data is safe in the log
    (tmp_path / "snapshot.json.tmp").rmdir()
    again = Store(tmp_path)
    again.open()  # the lock was released
    assert again.namespace("a").root == {"k": 1}
    again.close()
