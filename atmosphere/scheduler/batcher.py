"""The write batcher: coalesce many path writes into one multi-path update per flush."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from atmosphere.db.base import Database

_log = logging.getLogger(__name__)


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


class WriteBatch:
    """Pending writes keyed by full path; flushed as ONE atomic ``update`` at the database root.

    Firebase rejects an update where one key is an ancestor of another, so a write below a pending
    key is folded into that key's value, and a write above pending keys replaces them (the later
    write wins, as it would have with two separate updates).
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._inner: dict[str, int] = {}  # proper prefixes of pending keys -> how many keys
        self.updates = 0  # update calls made (each one database write)
        self.paths = 0  # paths written across those calls

    def keys(self) -> list[str]:
        """The paths this batch will write."""
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def set(self, path: str, value: Any) -> None:
        """Queue ``value`` at ``path`` (None deletes)."""
        for prefix in _prefixes(path):
            if prefix in self._values:
                self._fold(prefix, path[len(prefix) + 1 :], value)
                return
        if path in self._inner:
            for key in [k for k in self._values if k.startswith(path + "/")]:
                self._drop(key)
        if path not in self._values:
            for prefix in _prefixes(path):
                self._inner[prefix] = self._inner.get(prefix, 0) + 1
        self._values[path] = value

    def update(self, values: Mapping[str, Any]) -> None:
        """Queue several writes."""
        for path, value in values.items():
            self.set(path, value)

    def take(self) -> dict[str, Any]:
        """Remove and return every pending write."""
        values, self._values, self._inner = self._values, {}, {}
        return values

    def flush(self, db: Database) -> int:
        """Write everything pending as one update; return how many paths it carried."""
        values = self.take()
        if not values:
            return 0
        db.update("", values)
        self.updates += 1
        self.paths += len(values)
        return len(values)

    def _fold(self, key: str, rest: str, value: Any) -> None:
        current = self._values[key]
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
        self._values[key] = tree or None

    def _drop(self, key: str) -> None:
        del self._values[key]
        for prefix in _prefixes(key):
            left = self._inner[prefix] - 1
            if left:
                self._inner[prefix] = left
            else:
                del self._inner[prefix]
