"""Namespaces and durable commits: an append-only log written before the answer, plus snapshots.

Layout of the data directory:
  ``lock``          held (flock) by the one server using the directory;
  ``snapshot.json`` ``{"seq": N, "namespaces": {ns: tree}, "rules": {ns: text}}``; it holds
                    everything in the logs numbered below N;
  ``log.<N>``       one JSON line per commit: ``[ns, [[path, value], ...]]`` (a write) or
                    ``[ns, null, rules_text]`` (a rules change), values fully resolved.
Every commit is written with one ``os.write`` (no user-space buffer) before the caller answers,
so an acknowledged write survives ``kill -9``; ``fsync=True`` adds an fsync for power loss.

Compaction runs beside the writes: the log is rotated at once, and a worker thread writes the
snapshot of the roots as they were while new commits go to the fresh log. Until it is done,
writes copy (once) each dict the snapshot may still read instead of changing it in place.
It starts once the log holds as many bytes as the last snapshot, and at least
``compact_after_bytes`` (``compaction_due``): a restart then reads at most about twice the
data's size, and each log byte costs at most one snapshot byte written.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from atmosphere.rtdb import tree

Write = tuple[Sequence[str], Any]

COMPACT_AFTER_BYTES = 16 * 1024 * 1024
# A snapshot is encoded in pieces, one orjson call each, so the worker thread gives the
# server's thread the GIL between them: objects this wide, and the top levels, are split.
_SPLIT_WIDTH = 64
_SPLIT_DEPTH = 4
_WRITE_BYTES = 1024 * 1024  # pieces gathered per os.write

_log = logging.getLogger(__name__)


class DataDirInUse(RuntimeError):
    """Another server holds the data directory."""


class CorruptLog(RuntimeError):
    """A log record that cannot be read and is not a torn last write: start-up stops here."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(
            f"{path} holds a corrupt record at byte {offset} ({reason}); acknowledged writes "
            "follow it, so the server will not start without them. Recover with "
            "`atmosphere db --repair` (it keeps a copy, then cuts the log at that byte)"
        )
        self.path = path
        self.offset = offset


def read_log(path: Path) -> Iterator[tuple[int, Any]]:
    """(byte offset, record) for each record of a log; raise CorruptLog on a bad one.

    Each record is written whole with its newline by one ``os.write``, so only a last record
    without its newline can be a write cut short by a crash (never acknowledged): it is
    dropped with a warning. Anything unreadable before it is corruption.
    """
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset:end]
        if line.strip():
            try:
                yield offset, _checked(orjson.loads(line))
            except (orjson.JSONDecodeError, ValueError) as exc:
                if end < 0:
                    _log.warning(
                        "localdb: %s ends in a torn record (byte %d, %d bytes), a write cut "
                        "short by a crash and never acknowledged: dropped",
                        path, offset, len(line),
                    )  # fmt: skip
                    return
                raise CorruptLog(path, offset, str(exc)) from None
        if end < 0:
            return
        offset = end + 1


def compaction_due(log_bytes: int, snapshot_bytes: int, floor: int) -> bool:
    """Whether a log of ``log_bytes`` should be folded into a new snapshot.

    A fixed threshold made restarts slow (a 64 MB log took 4-6 s to replay under load, and
    every client waited that long) and large databases costly (a 1 GB snapshot rewritten every
    64 MB of log); growing with the snapshot bounds both.
    """
    return log_bytes >= max(floor, snapshot_bytes)


def _checked(record: Any) -> Any:
    """``record`` if it has the shape of a logged commit, else ValueError."""
    if type(record) is list and len(record) in (2, 3) and type(record[0]) is str:
        if record[1] is None and len(record) == 3 and type(record[2]) in (str, type(None)):
            return record
        writes = record[1]
        if len(record) == 2 and type(writes) is list and all(_is_write(w) for w in writes):
            return record
    raise ValueError("not a logged commit")


def _is_write(write: Any) -> bool:
    return (
        type(write) is list
        and len(write) == 2
        and type(write[0]) is list
        and all(type(key) is str for key in write[0])
    )


class Namespace:
    """One database: its current root and its rules text (None: none set)."""

    __slots__ = ("name", "root", "rules_text", "rules", "rules_are_default")

    def __init__(self, name: str) -> None:
        self.name = name
        self.root: Any = None
        self.rules_text: str | None = None
        self.rules: Any = None  # a parsed Rules object, set by the owner of the rules engine
        self.rules_are_default = False  # rules_text came from --rules: not persisted


class _Compaction:
    """A snapshot being written by a worker thread."""

    def __init__(self) -> None:
        self.owned: set[int] = set()  # dicts made since it started: safe to change in place
        self.snapshot_bytes = 0  # the size of the snapshot written, once done
        self.done = threading.Event()
        self.error: Exception | None = None
        self.thread: threading.Thread | None = None


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
        self._snapshot_bytes = 0  # the size of the last snapshot written or restored
        self.replayed_bytes = 0  # of log, when it opened
        self._log_torn = False  # the log ends in a partial record
        self._compaction: _Compaction | None = None

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
        running = self._compaction
        if running is not None and running.thread is not None:
            running.thread.join()
        self._finish_compaction()
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
            raw = snap.read_bytes()
            self._snapshot_bytes = len(raw)
            data = orjson.loads(raw)
            start = int(data["seq"])
            self._seq = start
            for name, root in data["namespaces"].items():
                self.namespace(name).root = root
            for name, text in data.get("rules", {}).items():
                self.namespace(name).rules_text = text
        for n in self._log_numbers():
            if n >= start:
                self.replayed_bytes += self._replay(self.dir / f"log.{n}")

    @property
    def restored_bytes(self) -> int:
        """How much ``open`` read: the snapshot's and the logs' bytes."""
        return self._snapshot_bytes + self.replayed_bytes

    def restored(self) -> str:
        """What ``open`` read, for the server's start-up line."""
        mb = 1024 * 1024
        return (
            f"{self._snapshot_bytes / mb:.1f} MB of snapshot and "
            f"{self.replayed_bytes / mb:.1f} MB of log"
        )

    def _replay(self, path: Path) -> int:
        """Apply the log at ``path``; its size in bytes."""
        for _, record in read_log(path):
            ns = self.namespace(record[0])
            if record[1] is None:
                ns.rules_text = record[2]
            else:
                ns.root = tree.apply_in_place(ns.root, record[1])
        return path.stat().st_size

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
        self._append(orjson.dumps([ns.name, writes], option=orjson.OPT_APPEND_NEWLINE))

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

    def owned(self) -> set[int] | None:
        """The dicts a write may change in place: None for any of them; while a snapshot is
        being written, only the ones made since (``tree.apply_in_place``)."""
        running = self._finish_compaction()
        return None if running is None else running.owned

    def _maybe_compact(self) -> None:
        # Only once the commit is current: the snapshot must hold what the old log held.
        due = compaction_due(self._log_bytes, self._snapshot_bytes, self.compact_after_bytes)
        if not due or self._finish_compaction() is not None:
            return
        state = self._state()
        try:
            self._next_log()
        except OSError as exc:
            # The commit is already durable in the log, and the caller is about to answer
            # it: failing now would make the client retry a write that happened.
            _log.error("localdb: cannot start a new log in %s (%s); will retry", self.dir, exc)
            return
        running = self._compaction = _Compaction()
        running.thread = threading.Thread(
            target=self._compact, args=(running, state, self._seq), name="localdb-compaction"
        )
        running.thread.start()

    def _compact(self, running: _Compaction, state: dict[str, Any], seq: int) -> None:
        """In the worker thread: write the snapshot, and say when done."""
        try:
            running.snapshot_bytes = self._write_snapshot(state, seq)
        except Exception as exc:  # reported by the server's thread, at its next write
            running.error = exc
        finally:
            running.done.set()

    def _finish_compaction(self) -> _Compaction | None:
        """The compaction still running, if any (one that ended is reported and forgotten)."""
        running = self._compaction
        if running is None or not running.done.is_set():
            return running
        self._compaction = None
        if running.error is None:
            self._snapshot_bytes = running.snapshot_bytes
        else:
            # The logs stay (a restart replays them) until a later compaction succeeds.
            _log.error(
                "localdb: compaction of %s failed (%s); will retry after the next %d log bytes",
                self.dir,
                running.error,
                max(self.compact_after_bytes, self._snapshot_bytes),
            )
        return None

    # -- compaction ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "namespaces": {n: ns.root for n, ns in self.namespaces.items() if ns.root is not None},
            "rules": {
                n: ns.rules_text
                for n, ns in self.namespaces.items()
                if ns.rules_text and not ns.rules_are_default
            },
        }

    def _rotate_and_snapshot(self) -> None:
        """Compact in this thread (on close: nothing writes any more)."""
        state = self._state()
        self._next_log()
        self._snapshot_bytes = self._write_snapshot(state, self._seq)

    def _write_snapshot(self, state: dict[str, Any], seq: int) -> int:
        """Write ``snapshot.json`` and drop the logs it holds; its size in bytes."""
        tmp = self.dir / "snapshot.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        total = 0
        try:
            pending: list[bytes] = []
            size = 0
            for piece in encode_pieces({"seq": seq, **state}):
                pending.append(piece)
                size += len(piece)
                total += len(piece)
                if size >= _WRITE_BYTES:
                    _write_fully(fd, b"".join(pending))
                    pending, size = [], 0
            _write_fully(fd, b"".join(pending))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.dir / "snapshot.json")
        self._fsync_dir()
        self._remove_logs_below(seq)
        return total

    def _remove_logs_below(self, seq: int) -> None:
        for n in self._log_numbers():
            if n < seq:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / f"log.{n}").unlink()


def encode_pieces(value: Any, depth: int = 0) -> Iterator[bytes]:
    """``value`` as compact JSON (what ``orjson.dumps`` writes), in pieces of one subtree."""
    if type(value) is not dict or (depth >= _SPLIT_DEPTH and len(value) <= _SPLIT_WIDTH):
        yield orjson.dumps(value)
        return
    separator = b"{"
    for key, child in value.items():
        yield separator + orjson.dumps(key) + b":"
        separator = b","
        yield from encode_pieces(child, depth + 1)
    yield b"{}" if separator == b"{" else b"}"


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
