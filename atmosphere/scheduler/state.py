"""The dispatcher's in-memory view of ``{root}/live``, built from stream events (no I/O).

Events (``put``/``patch`` at a path relative to ``live``) update a raw JSON tree; every record
they touch is re-parsed into its wire dataclass. Malformed records are logged once and left out
of the typed view, so garbage written under the root never stops the dispatcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import replace
from typing import Any, NamedTuple

from atmosphere.jobs import ChainState, InvalidRecord, JobSpec, Outcome
from atmosphere.presence import CloudInfo
from atmosphere.scheduler.fifo import FifoJobs

_log = logging.getLogger(__name__)

Key = tuple[str, ...]
_LOGGED_MEMORY = 10_000  # malformed paths remembered so each is logged once

# How many path segments below each section name one record.
RECORD_DEPTH: dict[str, int] = {
    "queue": 2,
    "delayed": 1,
    "clouds": 1,
    "inbox": 2,
    "outcomes": 1,
    "chains": 1,
    "schedules": 1,
    "dispatchers": 1,
    "commands": 1,
    "lease": 0,
}


# ``LiveState.apply``'s ``parsed`` when the caller has no parsed record (None means absent).
UNPARSED: Any = object()


class Change(NamedTuple):
    """One record of ``live`` whose parsed value changed (None: absent or malformed).

    A NamedTuple, not a frozen dataclass: made for every record an event or one of our writes
    changes, it costs about a third as much to build.
    """

    section: str
    key: Key
    old: Any
    new: Any


def _parse_queue(key: Key, raw: Any) -> JobSpec:
    spec = JobSpec.from_json(raw, job_id=key[1])
    return spec if spec.type == key[0] else spec.evolve(type=key[0])


def _parse_raw(key: Key, raw: Any) -> Any:
    return raw


_PARSERS: dict[str, Callable[[Key, Any], Any]] = {
    "queue": _parse_queue,
    "delayed": lambda key, raw: JobSpec.from_json(raw, job_id=key[0]),
    "clouds": lambda key, raw: CloudInfo.from_json(raw, key[0]),
    "inbox": lambda key, raw: JobSpec.from_json(raw, job_id=key[1]),
    "outcomes": lambda key, raw: Outcome.from_json(raw, key[0]),
    "chains": lambda key, raw: ChainState.from_json(raw, key[0]),
    "schedules": _parse_raw,
    "dispatchers": _parse_raw,
    "commands": _parse_raw,
    "lease": _parse_raw,
}


def _chain_step(chain: ChainState, value: Any) -> ChainState | None:
    """``chain`` after a write of its ``step``, exactly as parsing gives it; None: parse."""
    if type(value) is not int or value < 0:
        return None
    return replace(chain, step=value)


def _chain_replied(chain: ChainState, value: Any) -> ChainState | None:
    return replace(chain, replied=value is True)


# Writes of one field that the typed view applies to the record it holds instead of parsing the
# whole record again: settling each chain step moves its ``step`` (parsing it parses every step).
_FIELD_WRITES: dict[tuple[str, str], Callable[[Any, Any], Any]] = {
    ("chains", "step"): _chain_step,
    ("chains", "replied"): _chain_replied,
}


def split(path: str) -> list[str]:
    """Path segments of a slash path ("/a/b" -> ["a", "b"])."""
    segs = path.strip("/").split("/")
    if "" in segs:  # the root ("/" -> [""]), or a doubled slash
        return [p for p in segs if p]
    return segs


class LiveState:
    """Typed records of ``live/`` keyed by section, plus grouped views the dispatcher reads."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = {}
        self.records: dict[str, dict[Key, Any]] = {name: {} for name in RECORD_DEPTH}
        self.queue: dict[str, FifoJobs] = {}  # iterated oldest first, never sorted per round
        self.inbox: dict[str, dict[str, JobSpec]] = {}
        self._logged: set[str] = set()

    # -- typed views -------------------------------------------------------------------

    @property
    def delayed(self) -> dict[Key, JobSpec]:
        return self.records["delayed"]

    @property
    def clouds(self) -> dict[Key, CloudInfo]:
        return self.records["clouds"]

    @property
    def outcomes(self) -> dict[Key, Outcome]:
        return self.records["outcomes"]

    @property
    def chains(self) -> dict[Key, ChainState]:
        return self.records["chains"]

    def cloud(self, cloud_id: str) -> CloudInfo | None:
        """The parsed registration of one cloud."""
        found: CloudInfo | None = self.clouds.get((cloud_id,))
        return found

    def outcome(self, job_id: str) -> Outcome | None:
        """The pending outcome of one job."""
        found: Outcome | None = self.outcomes.get((job_id,))
        return found

    def chain(self, chain_id: str) -> ChainState | None:
        """The chain record of one chain."""
        found: ChainState | None = self.chains.get((chain_id,))
        return found

    def raw_record(self, section: str, key: Key) -> Any:
        """One record of ``section`` as stored (None: absent)."""
        return _get_in(self.raw, [section, *key])

    def held(self, cloud_id: str) -> int:
        """How many jobs the cloud's inbox holds, per this view."""
        return len(self.inbox.get(cloud_id, ()))

    def in_queue(self, spec: JobSpec) -> bool:
        """True when a copy of the job waits in its type's queue."""
        return spec.id in self.queue.get(spec.type, {})

    def locate(self, job_id: str) -> str | None:
        """Where in live a job currently is: "queue", "delayed", "inbox", or None."""
        if (job_id,) in self.delayed:
            return "delayed"
        if any(job_id in jobs for jobs in self.queue.values()):
            return "queue"
        if any(job_id in jobs for jobs in self.inbox.values()):
            return "inbox"
        return None

    # -- applying events -----------------------------------------------------------------

    def apply(self, kind: str, path: str, data: Any, parsed: Any = UNPARSED) -> list[Change]:
        """Apply one stream event (or one of our own writes); return the records it changed.

        ``parsed``: for a put of one whole record, the record as its parser would return it
        (our own writes, built from the typed value): stored as is, not parsed again.
        """
        segs = split(path)
        if kind == "patch" and isinstance(data, dict):
            changes: list[Change] = []
            for child, value in data.items():
                changes.extend(self._write(segs + split(child), value))
            return changes
        if kind == "patch":
            self._log_once("/" + "/".join(segs), f"patch with non-object data {data!r:.60}")
            return []
        return self._write(segs, data, parsed)

    def _write(self, segs: list[str], value: Any, parsed: Any = UNPARSED) -> list[Change]:
        if isinstance(value, dict) and not value:
            value = None
        if not segs:
            old_root, self.raw = self.raw, value if isinstance(value, dict) else {}
            if value is not None and not isinstance(value, dict):
                self._log_once("/", f"live is not an object: {value!r:.60}")
            changes: list[Change] = []
            for section in set(old_root) | set(self.raw) | set(RECORD_DEPTH):
                changes.extend(
                    self._resync(section, (), old_root.get(section), self.raw.get(section))
                )
            return changes
        section = segs[0]
        depth = RECORD_DEPTH.get(section)
        if depth is None:
            _set_in(self.raw, segs, value)
            self._log_once(section, f"unknown section live/{section}; ignored")
            return []
        old = _get_in(self.raw, segs)
        if old is value or old == value:
            # Nothing changes (the typed view follows the raw tree): the stream showing us our
            # own writes, and the overlay replaying them, cost a comparison, not a parse.
            return []
        _set_in(self.raw, segs, value)
        below = tuple(segs[1:])
        if len(below) == depth:  # one whole record: it is ``value``
            if parsed is UNPARSED:
                parsed = self._parse(section, below, value)
            return self._store(section, below, parsed)
        if len(below) > depth:
            return self._store(section, below[:depth], self._below_record(section, below, value))
        return self._resync(section, below, old, value)

    def _below_record(self, section: str, below: Key, value: Any) -> Any:
        """The record holding ``below`` after ``value`` was written there (in the raw tree)."""
        key = below[: RECORD_DEPTH[section]]
        field_write = (
            _FIELD_WRITES.get((section, below[-1])) if len(below) == len(key) + 1 else None
        )
        held = self.records[section].get(key)
        if field_write is not None and held is not None:
            updated = field_write(held, value)
            if updated is not None:
                return updated
        return self._parse(section, key, _get_in(self.raw, [section, *key]))

    def _resync(self, section: str, prefix: Key, old: Any, new: Any) -> list[Change]:
        depth = RECORD_DEPTH.get(section)
        if depth is None:
            if new is not None:
                self._log_once(section, f"unknown section live/{section}; ignored")
            return []
        keys: set[Key] = set()
        for node in (old, new):
            keys.update(self._record_keys(section, prefix, node, depth - len(prefix)))
        # Records left in the typed view under this prefix must be rechecked too (deletions).
        keys.update(k for k in self.records[section] if k[: len(prefix)] == prefix)
        changes: list[Change] = []
        for key in keys:
            rel = list(key[len(prefix) :])
            before, after = _get_in(old, rel), _get_in(new, rel)
            if (before is after or before == after) and key in self.records[section]:
                continue
            changes.extend(self._reparse(section, key))
        return changes

    def _record_keys(self, section: str, prefix: Key, node: Any, remaining: int) -> Iterator[Key]:
        if node is None:
            return
        if remaining <= 0:
            yield prefix
            return
        if not isinstance(node, dict):
            self._log_once(
                "/".join((section, *prefix)), f"live/{section} entry is not an object: {node!r:.60}"
            )
            return
        for child, value in node.items():
            yield from self._record_keys(section, (*prefix, child), value, remaining - 1)

    def _reparse(self, section: str, key: Key) -> list[Change]:
        raw = _get_in(self.raw, [section, *key])
        return self._store(section, key, self._parse(section, key, raw))

    def _parse(self, section: str, key: Key, raw: Any) -> Any:
        if raw is None:
            return None
        try:
            return _PARSERS[section](key, raw)
        except (InvalidRecord, KeyError, TypeError, ValueError) as exc:
            self._log_once("/".join((section, *key)), f"skipping malformed record: {exc}")
            return None

    def _store(self, section: str, key: Key, new: Any) -> list[Change]:
        store = self.records[section]
        old = store.get(key)
        if new is None:
            store.pop(key, None)
        else:
            store[key] = new
        if old == new:
            return []
        self._index(section, key, new)
        return [Change(section, key, old, new)]

    def _index(self, section: str, key: Key, new: Any) -> None:
        if section not in ("queue", "inbox"):
            return
        groups: dict[str, Any] = self.queue if section == "queue" else self.inbox
        group, job_id = key
        members: MutableMapping[str, JobSpec] | None = groups.get(group)
        if new is None:
            if members is not None:
                members.pop(job_id, None)
                if not members:
                    del groups[group]
            return
        if members is None:
            members = groups[group] = FifoJobs() if section == "queue" else {}
        members[job_id] = new

    def _log_once(self, where: str, message: str) -> None:
        if len(self._logged) >= _LOGGED_MEMORY:
            self._logged.clear()  # bounded: a flood of distinct garbage may be logged again
        if where not in self._logged:
            self._logged.add(where)
            _log.warning("live/%s: %s", where, message)


def _get_in(node: Any, segs: list[str]) -> Any:
    for seg in segs:
        if not isinstance(node, dict):
            return None
        node = node.get(seg)
    return node


def _set_in(root: dict[str, Any], segs: list[str], value: Any) -> None:
    """Set (or with None delete) ``segs`` in ``root``, pruning parents left empty."""
    if isinstance(value, dict) and not value:
        value = None
    trail: list[tuple[dict[str, Any], str]] = []
    node: Any = root
    for seg in segs[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            if value is None:
                return
            child = {}
            node[seg] = child
        trail.append((node, seg))
        node = child
    if value is None:
        node.pop(segs[-1], None)
        for parent, seg in reversed(trail):
            if parent[seg]:
                break
            del parent[seg]
    else:
        node[segs[-1]] = value
