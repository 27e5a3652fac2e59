"""The write batcher: coalesce many path writes into one multi-path update per flush.

Each ``update`` call is one decision (assign a job, settle an outcome...) whose writes must land
together. They usually all go out as ONE update; when the database refuses that update as
invalid (a value nested too deep, a bad key, a body too large) the batch is bisected by
decision until the refused ones are isolated, so one poison decision cannot hold up the rest
(Kafka producers split a rejected batch the same way). A batch is also cut by size before it
is sent, so it never exceeds what the server accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from atmosphere.db.base import Database
from atmosphere.errors import RequestRefused
from atmosphere.storable import MAX_WRITE_BYTES, encoded_size, plan_batches

_log = logging.getLogger(__name__)

# A big burst goes out in a few updates instead of one the server refuses.
MAX_BATCH_BYTES = MAX_WRITE_BYTES


def _prefixes(path: str) -> list[str]:
    """The proper prefixes of a slash path, shortest first ("a/b/c" -> ["a", "a/b"])."""
    out = []
    cut = path.find("/")
    while cut >= 0:
        out.append(path[:cut])
        cut = path.find("/", cut + 1)
    return out


class Group(NamedTuple):
    """The writes of one decision, and the tag its writer gave (what to do if refused).

    A NamedTuple, not a frozen dataclass: one per decision (two or three per job).
    """

    writes: dict[str, Any]
    tag: object = None


@dataclass(frozen=True)
class Refused:
    """A decision the database refused, and why."""

    group: Group
    error: RequestRefused


class WriteBatch:
    """Pending writes keyed by full path; flushed as ONE atomic ``update`` at the database root.

    Firebase rejects an update where one key is an ancestor of another, so a write below a pending
    key is folded into that key's value, and a write above pending keys replaces them (the later
    write wins, as it would have with two separate updates). Decisions rarely overlap: writes are
    only logged as they come, and folded (``_folded``) when the paths turn out to overlap.
    """

    def __init__(self, max_bytes: int = MAX_BATCH_BYTES) -> None:
        self.max_bytes = max_bytes
        self._log: list[tuple[str, Any]] = []  # every write, in order
        self._latest: dict[str, Any] = {}  # the last value written at each path
        self._values: dict[str, Any] | None = None  # what the update carries (cached)
        self._groups: list[Group] = []
        self.updates = 0  # update calls made (each one database write)
        self.paths = 0  # paths written across those calls

    def keys(self) -> list[str]:
        """The paths written so far, each once (a write folded into a pending ancestor's value
        is listed too: no fold needed to see where the batch writes)."""
        return list(self._latest)

    def __len__(self) -> int:
        return len(self._pending())

    def __bool__(self) -> bool:
        return bool(self._log)

    def set(self, path: str, value: Any, tag: object = None) -> None:
        """Queue ``value`` at ``path`` (None deletes), as a decision of its own."""
        self.update({path: value}, tag)

    def update(self, values: Mapping[str, Any], tag: object = None) -> None:
        """Queue one decision's writes; ``tag`` comes back with them if they are refused."""
        if not values:
            return
        writes = dict(values)
        self._groups.append(Group(writes, tag))
        self._log.extend(writes.items())
        self._latest.update(writes)
        self._values = None

    def take(self) -> dict[str, Any]:
        """Remove and return every pending write."""
        values = self._pending()
        self._log, self._latest, self._values, self._groups = [], {}, None, []
        return values

    def flush(self, db: Database) -> list[Refused]:
        """Write everything pending; return the decisions the database refused (written: none).

        Raises DatabaseError for anything but a refusal (a transport error, permission denied):
        part of the batch may then have been written already.
        """
        groups = self._groups
        values = self.take()
        if not values:
            return []
        refused: list[Refused] = []
        if encoded_size(values) <= self.max_bytes:
            self._send(db, groups, values, refused)
            return refused
        sizes = [encoded_size(g.writes) for g in groups]
        # In order: later decisions may overwrite earlier ones.
        runs, oversized = plan_batches(sizes, len(groups), self.max_bytes)
        for i in oversized:
            error = RequestRefused(
                f"one decision's writes are {sizes[i]} bytes, over the "
                f"{self.max_bytes}-byte limit of one update",
                status=413,
            )
            refused.append(Refused(groups[i], error))
        for run in runs:
            part = [groups[i] for i in run]
            self._send(db, part, _merge(part), refused)
        return refused

    def _send(
        self, db: Database, groups: list[Group], values: dict[str, Any], refused: list[Refused]
    ) -> None:
        if refused:
            # A decision made after a refused one may build on it (assigning the chain step
            # it queued): it is decided again from the database's view, never written alone.
            kept = [g for g in groups if not _builds_on(g, refused)]
            if len(kept) < len(groups):
                _log.warning(
                    "dropped %d decision(s) that build on a refused one; deciding them again",
                    len(groups) - len(kept),
                )
                if not kept:
                    return
                groups, values = kept, _merge(kept)
        try:
            db.update("", values)
        except RequestRefused as exc:
            if len(groups) == 1:
                refused.append(Refused(groups[0], exc))
                return
            mid = len(groups) // 2
            for half in (groups[:mid], groups[mid:]):  # in order: later writes win
                self._send(db, half, _merge(half), refused)
            return
        self.updates += 1
        self.paths += len(values)

    def _pending(self) -> dict[str, Any]:
        if self._values is None:
            self._values = _resolved(self._log, self._latest)
        return self._values


class _Folder:
    """Writes applied in order into non-overlapping paths (see ``WriteBatch``)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._inner: dict[str, int] = {}  # proper prefixes of pending keys -> how many keys

    def put(self, path: str, value: Any) -> None:
        """Apply one write."""
        prefixes = _prefixes(path)
        for prefix in prefixes:
            if prefix in self.values:
                self._fold(prefix, path[len(prefix) + 1 :], value)
                return
        if path in self._inner:
            for key in [k for k in self.values if k.startswith(path + "/")]:
                self._drop(key)
        if path not in self.values:
            inner = self._inner
            for prefix in prefixes:
                inner[prefix] = inner.get(prefix, 0) + 1
        self.values[path] = value

    def _fold(self, key: str, rest: str, value: Any) -> None:
        current = self.values[key]
        tree: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
        node = tree
        parts = rest.split("/")
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
        self.values[key] = tree or None

    def _drop(self, key: str) -> None:
        del self.values[key]
        for prefix in _prefixes(key):
            left = self._inner[prefix] - 1
            if left:
                self._inner[prefix] = left
            else:
                del self._inner[prefix]


def _builds_on(group: Group, refused: Sequence[Refused]) -> bool:
    """True if ``group`` writes at, above or below a path that a refused decision wrote."""
    for item in refused:
        for theirs in item.group.writes:
            for mine in group.writes:
                if mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/"):
                    return True
    return False


def _merge(groups: list[Group]) -> dict[str, Any]:
    """One update holding ``groups``' writes, folded as the batch folds them (in order)."""
    writes = [write for group in groups for write in group.writes.items()]
    return _resolved(writes, dict(writes))


def _resolved(writes: list[tuple[str, Any]], latest: dict[str, Any]) -> dict[str, Any]:
    """``writes`` (``latest``: the last value at each path) with no path below another: the
    paths above or below others folded in order, the rest as they are."""
    tangled = _overlapping(latest)
    if not tangled:
        return latest
    values = {path: value for path, value in latest.items() if path not in tangled}
    values.update(_folded(write for write in writes if write[0] in tangled))
    return values


def _overlapping(paths: Iterable[str]) -> set[str]:
    """The paths below another of ``paths`` and those above them, by segments ("a/b" is below
    "a", "a-" is not)."""
    # "q" is below "p" exactly when "q/" starts with "p/". Sorted as strings, the paths starting
    # with "p/" follow it at once: if any path is below another, one is below the path just
    # before it (checked in C, the common case of no overlap), and each one below another
    # meets its topmost ancestor as ``top``. (The flush of every step checks its batch, some
    # fifteen paths: about 7 us as lists of segments.)
    slashed_paths = sorted([path + "/" for path in paths])
    tangled: set[str] = set()
    if not any(map(str.startswith, slashed_paths[1:], slashed_paths)):
        return tangled
    top = slashed_paths[0]  # the last path no other one is above, with its slash ("a/")
    for slashed in slashed_paths[1:]:
        if slashed.startswith(top):
            tangled.update((top[:-1], slashed[:-1]))
        else:
            top = slashed
    return tangled


def _folded(writes: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``writes`` applied in order with no path left below another."""
    folder = _Folder()
    for path, value in writes:
        folder.put(path, value)
    return folder.values
