"""A local copy of one database subtree, kept current by a stream listener.

``apply_event`` is the pure core (Firebase's put/patch semantics on an immutable tree);
``Mirror`` is the thin shell that feeds it from ``Database.listen``. After a reconnect the
stream's initial ``put "/"`` replaces the whole copy, so the mirror resyncs by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from atmosphere.types import JSON

from .base import Database, EventCallback, StatusCallback
from .tree import get_in, normalise, render, set_in, split_path


def apply_event(tree: Any, kind: str, path: str, data: JSON) -> Any:
    """The tree after one stream event: put replaces (null deletes), patch replaces each child.

    ``tree`` is not modified; unchanged subtrees are shared with the result.
    """
    at = split_path(path)
    if kind == "put":
        return set_in(tree, at, normalise(data))
    if kind == "patch":
        if not isinstance(data, dict):
            raise ValueError(f"a patch carries an object, not {type(data).__name__}")
        for key, value in data.items():
            tree = set_in(tree, at + split_path(key), normalise(value))
        return tree
    raise ValueError(f"unknown event kind {kind!r}")


class Mirror:
    """The current value of ``path``, mirrored locally; reads are thread-safe copies."""

    def __init__(
        self,
        db: Database,
        path: str,
        on_change: EventCallback | None = None,
        *,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.path = path
        self._on_change = on_change
        self._on_status = on_status
        self._cond = threading.Condition()
        self._tree: Any = None
        self._synced = False
        self.events = 0  # events applied so far
        self._listener = db.listen(path, self._apply, on_status=self._status)

    @property
    def value(self) -> JSON:
        """A copy of the whole mirrored value (None when absent)."""
        return render(self.snapshot())

    def get(self, subpath: str = "") -> JSON:
        """A copy of the value at ``subpath`` below the mirrored path."""
        return render(get_in(self.snapshot(), split_path(subpath)))

    def snapshot(self) -> Any:
        """The stored tree itself (zero-copy; lists appear as index dicts). Never mutate it."""
        with self._cond:
            return self._tree

    @property
    def synced(self) -> bool:
        """True while the stream is up and the initial snapshot has been applied."""
        with self._cond:
            return self._synced

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until the mirror holds a complete snapshot; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._synced, timeout)

    def wait_for(self, predicate: Callable[[Any], object], timeout: float | None = None) -> bool:
        """Block until ``predicate(snapshot)`` is true; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(predicate(self._tree)), timeout)

    def close(self) -> None:
        """Stop following the database; the last value stays readable."""
        self._listener.close()

    def _apply(self, kind: str, path: str, data: JSON) -> None:
        with self._cond:
            self._tree = apply_event(self._tree, kind, path, data)
            self.events += 1
            self._cond.notify_all()
        if self._on_change is not None:
            self._on_change(kind, path, data)

    def _status(self, up: bool) -> None:
        with self._cond:
            self._synced = up
            self._cond.notify_all()
        if self._on_status is not None:
            self._on_status(up)
