"""Namespaces and durable commits: an append-only log written before the answer, plus snapshots.

Layout of the data directory:
  ``lock``          held (flock) by the one server using the directory;
  ``snapshot.json`` ``{"seq": N, "namespaces": {ns: tree}, "rules": {ns: text}}``; it holds
                    everything in the logs numbered below N;
  ``log.<N>``       one JSON line per commit: ``[ns, [[path, value], ...]]`` (a write) or
                    ``[ns, null, rules_text]`` (a rules change), values fully resolved.
Every commit is written with one ``os.write`` (no user-space buffer) before the caller answers,
so an acknowledged write survives ``kill -9``; ``fsync=True`` adds an fsync for power loss.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from . import tree

Write = tuple[Sequence[str], Any]

COMPACT_AFTER_BYTES = 64 * 1024 * 1024

_log = logging.getLogger(__name__)


class DataDirInUse(RuntimeError):
    """Another server holds the data directory."""


class Namespace:
    """One database: its current root and its rules text (None: none set)."""

    __slots__ = ("name", "root", "rules_text", "rules", "rules_are_default")

    def __init__(self, name: str) -> None:
        self.name = name
        self.root: Any = None
        self.rules_text: str | None = None
        self.rules: Any = None  # a parsed Rules object, set by the owner of the rules engine
        self.rules_are_default = False  # rules_text came from --rules: not persisted


class Store:
    """All namespaces of one server, persisted in ``data_dir``; used from one thread."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        fsync: bool = False,
        compact_after_bytes: int = COMPACT_AFTER_BYTES,
    ) -> None:
        self.dir = Path(data_dir)
        self.fsync = fsync
        self.compact_after_bytes = compact_after_bytes
        self.namespaces: dict[str, Namespace] = {}
        self._lock_fd = -1
        self._log_fd = -1
        self._seq = 0
        self._log_bytes = 0
        self._log_torn = False  # the log ends in a partial record

    # -- opening and closing -------------------------------------------------------------

    def open(self) -> None:
        """Take the directory lock, restore the last state and start a fresh log."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise DataDirInUse(f"{self.dir} is in use by another atmosphere db server") from exc
        self._restore()
        self._seq = max([self._seq, *self._log_numbers()]) + 1
        self._open_log()

    def close(self) -> None:
        """Compact everything into one snapshot and release the directory."""
        if self._log_fd >= 0:
            try:
                self._rotate_and_snapshot()
            except OSError as exc:  # the logs stay, and the next start replays them
                _log.warning("localdb: final compaction of %s failed (%s)", self.dir, exc)
            os.close(self._log_fd)
            self._log_fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _log_numbers(self) -> list[int]:
        out = []
        for p in self.dir.glob("log.*"):
            suffix = p.name[4:]
            if suffix.isdigit():
                out.append(int(suffix))
        return sorted(out)

    def _restore(self) -> None:
        snap = self.dir / "snapshot.json"
        start = 0
        if snap.exists():
            data = orjson.loads(snap.read_bytes())
            start = int(data["seq"])
            self._seq = start
            for name, root in data["namespaces"].items():
                self.namespace(name).root = root
            for name, text in data.get("rules", {}).items():
                self.namespace(name).rules_text = text
        for n in self._log_numbers():
            if n >= start:
                self._replay(self.dir / f"log.{n}")

    def _replay(self, path: Path) -> None:
        for line in path.read_bytes().split(b"\n"):
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a write torn by a crash: it was never acknowledged
            ns = self.namespace(record[0])
            if record[1] is None:
                ns.rules_text = record[2]
            else:
                ns.root = tree.apply_in_place(ns.root, record[1])

    def _open_log(self) -> None:
        """Start writing to ``log.<seq>``; on failure the current log stays in use."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        fd = os.open(self.dir / f"log.{self._seq}", flags, 0o600)
        # Swap only once the new one is open: closing first would leave a stale descriptor
        # number that the next open() (a client socket, say) could take over.
        old, self._log_fd, self._log_bytes = self._log_fd, fd, 0
        if old >= 0:
            os.close(old)
        if self.fsync:
            self._fsync_dir()  # the new file's name must survive a power cut too

    def _next_log(self) -> None:
        """Continue in ``log.<seq + 1>``; on failure nothing changes."""
        self._seq += 1
        try:
            self._open_log()
        except OSError:
            self._seq -= 1
            raise

    def _fsync_dir(self) -> None:
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- namespaces and commits ----------------------------------------------------------

    def namespace(self, name: str) -> Namespace:
        """The namespace called ``name``, created empty on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name)
        return ns

    def commit(self, ns: Namespace, writes: Sequence[Write], new_root: Any) -> None:
        """Make ``new_root`` (``writes`` applied to ``ns.root``) durable, then current."""
        self.log(ns, writes)
        self.make_current(ns, new_root)

    def log(self, ns: Namespace, writes: Sequence[Write]) -> None:
        """Append ``writes`` to the log (raises OSError, with the log intact, on failure)."""
        self._append(orjson.dumps([ns.name, writes]) + b"\n")

    def make_current(self, ns: Namespace, new_root: Any) -> None:
        """After ``log``: the logged writes applied."""
        ns.root = new_root
        self._maybe_compact()

    def set_rules_text(self, ns: Namespace, text: str | None) -> None:
        """Persist a new rules text for ``ns``."""
        self._append(orjson.dumps([ns.name, None, text]) + b"\n")
        ns.rules_text = text
        ns.rules_are_default = False
        self._maybe_compact()

    def _append(self, line: bytes) -> None:
        if self._log_torn:
            self._next_log()  # raises (nothing written) if it cannot
            self._log_torn = False
        view = memoryview(line)
        try:
            while view:
                written = os.write(self._log_fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._log_fd)
        except OSError:
            # (A full disk, say.) Cut the partial record off so later records stay readable;
            # the caller answers with an error and the tree is unchanged.
            try:
                os.ftruncate(self._log_fd, self._log_bytes)
            except OSError:
                # The next record would be glued to the torn one and lost with it on replay:
                # continue in a new log instead.
                self._log_torn = True
            raise
        self._log_bytes += len(line)

    def _maybe_compact(self) -> None:
        # Only once the commit is current: the snapshot must hold what the old log held.
        if self._log_bytes < self.compact_after_bytes:
            return
        try:
            self._rotate_and_snapshot()
        except OSError as exc:
            # The commit is already durable in the log, and the caller is about to answer
            # it: failing now would make the client retry a write that happened. The logs
            # stay until a later compaction succeeds.
            _log.warning("localdb: compaction of %s failed (%s); will retry", self.dir, exc)

    # -- compaction ----------------------------------------------------------------------

    def _rotate_and_snapshot(self) -> None:
        # In this thread: writes change the tree in place, so a snapshot serialised beside
        # them could catch one half done. (Serialising is fast: orjson, once per 64 MB.)
        state = {
            "namespaces": {n: ns.root for n, ns in self.namespaces.items() if ns.root is not None},
            "rules": {
                n: ns.rules_text
                for n, ns in self.namespaces.items()
                if ns.rules_text and not ns.rules_are_default
            },
        }
        self._next_log()
        self._write_snapshot(state, self._seq)

    def _write_snapshot(self, state: dict[str, Any], seq: int) -> None:
        tmp = self.dir / "snapshot.json.tmp"
        data = orjson.dumps({"seq": seq, **state})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.dir / "snapshot.json")
        self._fsync_dir()
        self._remove_logs_below(seq)

    def _remove_logs_below(self, seq: int) -> None:
        for n in self._log_numbers():
            if n < seq:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / f"log.{n}").unlink()
