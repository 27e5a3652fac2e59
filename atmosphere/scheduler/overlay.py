"""Our own ``live/`` writes that the stream has not shown back yet (the optimistic overlay).

The dispatcher applies its writes to its view at once, so it never assigns a job twice while the
update travels. But an event committed *before* our update may arrive after it (the embedded
server sends a whole-value ``put "/"`` for writes made above ``live``), and would revert our view.
So every flush carries a marker (``live/dispatchers/{id}/seq = "{run}:{n}"``) in the same atomic
update; until the stream shows a marker >= n, batch n is replayed over each incoming event.

The marker lives in our presence record, which a new leader deletes as silent once we are
deposed: a stream resynced after that shows no marker at all, and would never confirm what is
pending. So pending batches last only while we lead under the epoch that wrote them (``outlived``).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.scheduler.state import Change


class Overlay:
    """Unconfirmed ``live/`` writes, grouped by the flush that carried them."""

    def __init__(self, run: str | None = None) -> None:
        self.run = run or secrets.token_hex(4)
        self._n = 0
        self._unflushed: list[tuple[str, Any]] = []
        self._pending: deque[tuple[int, list[tuple[str, Any]]]] = deque()
        self._epoch = 0  # the leadership epoch the pending batches were written under

    def __bool__(self) -> bool:
        return bool(self._pending)

    def record(self, rel: str, value: Any) -> None:
        """Remember a write (path relative to ``live``, value as applied locally)."""
        self._unflushed.append((rel, value))

    @property
    def needs_marker(self) -> bool:
        """True when the batch about to be flushed holds ``live/`` writes."""
        return bool(self._unflushed)

    def next_marker(self) -> str:
        """The marker value for the batch about to be flushed."""
        return f"{self.run}:{self._n + 1}"

    def flushed(self, ok: bool, epoch: int = 0) -> None:
        """The batch was written (ok) under ``epoch``, or failed (its writes are forgotten)."""
        if ok and self._unflushed:
            self._n += 1
            self._pending.append((self._n, self._unflushed))
            self._epoch = epoch
        self._unflushed = []

    def outlived(self, leading: bool, epoch: int) -> bool:
        """True when batches are pending from a leadership we no longer hold (deposed, or leading
        again under a new epoch): their marker may be gone with our record, so nothing would
        ever confirm them, and replaying them would undo what happened since."""
        return bool(self._pending) and (not leading or epoch != self._epoch)

    def confirm(self, marker: Any) -> None:
        """The stream shows ``marker``: every batch up to it is in our view for real."""
        if not isinstance(marker, str) or ":" not in marker:
            return
        run, _, count = marker.partition(":")
        if run != self.run or not count.isdigit():
            return
        seen = int(count)
        while self._pending and self._pending[0][0] <= seen:
            self._pending.popleft()

    def replay(self) -> Iterator[tuple[str, Any]]:
        """Every unconfirmed write, oldest first, including those of a batch not flushed yet."""
        for _, writes in self._pending:
            yield from writes
        # A held batch (bookkeeping waiting to ride along) spans several iterations: an event
        # in between, e.g. a resync snapshot, predates it and must not revert it either.
        yield from self._unflushed

    def clear(self) -> None:
        """Forget everything (after a failed write, the next snapshot is the truth)."""
        self._pending.clear()
        self._unflushed = []


def net(changes: Sequence[Change]) -> list[Change]:
    """One change per record: its first old value and its last new one, unless they are equal."""
    first: dict[tuple[str, tuple[str, ...]], Change] = {}
    last: dict[tuple[str, tuple[str, ...]], Change] = {}
    for change in changes:
        key = (change.section, change.key)
        first.setdefault(key, change)
        last[key] = change
    out = []
    for key, start in first.items():
        end = last[key]
        if start is end:
            out.append(start)  # the record's one change (nearly always): as it is
        elif start.old != end.new:
            out.append(Change(start.section, start.key, start.old, end.new))
    return out


def resolve(value: Any, now_ms: int) -> Any:
    """Our own write as the server will store it: server timestamps become our clock.

    A value holding no server timestamp comes back as it is, not copied: an assignment's
    inbox entry is a flat dict the dispatcher just built (a copy per job was ~2 us).
    """
    if not isinstance(value, dict):
        return value
    if value == SERVER_TIMESTAMP:
        return now_ms
    if dict not in map(type, value.values()):
        return value  # flat (the records we write are plain JSON): no timestamp inside
    return {k: resolve(v, now_ms) for k, v in value.items()}
