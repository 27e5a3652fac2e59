"""Turning commits into SSE ``put``/``patch`` frames for each listener (spec section 3.3)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from atmosphere.rtdb import tree

MAX_QUEUED_BYTES = 32 * 1024 * 1024
KEEP_ALIVE = b"event: keep-alive\ndata: null\n\n"
_log = logging.getLogger(__name__)


def sse_json(value: Any) -> bytes:
    """Compact one-line JSON, ASCII only (requests may decode the stream as Latin-1)."""
    data = orjson.dumps(value)
    if data.isascii():
        return data
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def frame(event: str, path: Sequence[str], data: Any) -> bytes:
    """One ``event: ...\\ndata: {"path":..,"data":..}\\n\\n`` frame."""
    body = sse_json({"path": "/" + "/".join(path), "data": data})
    return b"event: " + event.encode("ascii") + b"\ndata: " + body + b"\n\n"


class Sink(Protocol):
    """Where a directly-written listener's frames go (the fast server's connection)."""

    def write(self, data: bytes) -> int:
        """Send ``data`` now; return the bytes still waiting in the connection's buffer."""

    def end(self) -> None:
        """Finish the response and close the connection."""

    def abort(self) -> None:
        """Drop the connection at once."""


class Listener:
    """One open stream: what it listens to, and either a sink or a queue of frames to send."""

    __slots__ = (
        "path",
        "ns",
        "check",
        "sink",
        "frames",
        "queued",
        "closed",
        "overflowed",
        "cancel",
        "limit",
        "_wake",
    )

    def __init__(self, path: Sequence[str], check: Callable[[Any], bool] | None = None) -> None:
        self.path = tuple(path)
        self.ns = ""
        # check(root) -> may this listener still read? None: always (admin).
        self.check = check
        self.sink: Sink | None = None  # set: frames are written at once, without a task
        self.frames: deque[bytes] = deque()
        self.queued = 0
        self.closed = False
        self.overflowed = False
        self.cancel: bytes | None = None
        self.limit = MAX_QUEUED_BYTES  # unsent bytes after which it is cut off
        self._wake: asyncio.Event | None = None

    def push(self, data: bytes) -> None:
        """Send or queue one frame; a listener too far behind is cut off."""
        if self.closed:
            return
        limit = self.limit
        if self.sink is not None:
            if self.sink.write(data) > limit:
                self._overflow()
            return
        self.frames.append(data)
        self.queued += len(data)
        if self.queued > limit:
            self._overflow()
        elif self._wake is not None:
            self._wake.set()

    def _overflow(self) -> None:
        # Hopelessly behind: free what it holds and cut it off. The client reconnects and
        # gets a fresh snapshot, which is cheaper than buffering without bound.
        self.overflowed = True
        self.closed = True
        self.frames.clear()
        self.queued = 0
        if self.sink is not None:
            self.sink.abort()
        if self._wake is not None:
            self._wake.set()

    def take(self) -> bytes:
        """All queued frames as one chunk."""
        data = b"".join(self.frames)
        self.frames.clear()
        self.queued = 0
        if self._wake is not None:
            self._wake.clear()
        return data

    def close(self, cancel_reason: str | None = None) -> None:
        """Stop the stream (after sending a ``cancel`` event if a reason is given)."""
        if self.closed:
            return
        self.closed = True
        if cancel_reason is not None:
            self.cancel = b"event: cancel\ndata: " + sse_json(cancel_reason) + b"\n\n"
        if self.sink is not None:
            if self.cancel is not None:
                self.sink.write(self.cancel)
            self.sink.end()
        elif self._wake is not None:
            self._wake.set()

    async def wait(self, timeout: float) -> bool:
        """Queue mode: wait until there is something to do; False on timeout."""
        if self.frames or self.closed:
            return True
        if self._wake is None:
            self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True


class _Commit:
    """One committed write, as every listener's frames are made from it.

    What each written location became (changed or not, and its rendered value) is worked out
    once per commit, on first need, instead of once per listener: a PATCH of many entries
    fanned out to several listeners otherwise reads, compares and renders each entry again
    for every one of them.
    """

    __slots__ = ("wpath", "entries", "before", "after", "_written", "_news")

    def __init__(
        self,
        wpath: Sequence[str],
        entries: Sequence[tuple[Sequence[str], Any]] | None,
        before: Any,
        after: Any,
    ) -> None:
        self.wpath = tuple(wpath)
        self.entries = entries
        self.before = before
        self.after = after
        self._written: list[tuple[tuple[str, ...], Any, Any]] | None = None
        self._news: dict[tuple[str, ...], Any] = {}

    def written(self) -> list[tuple[tuple[str, ...], Any, Any]]:
        """Each PATCH entry's (full path, old value, new value).

        The new value is the entry's own (a PATCH stores each entry's value at its path, and
        the paths never overlap); the old one is what an in-place write kept (``Before``'s
        ``olds``, made in entry order), or is read from the old tree.
        """
        if self._written is None:
            w, before, entries = self.wpath, self.before, self.entries or ()
            if type(before) is tree.Before and len(before.olds) == len(entries):
                olds = before.olds
                self._written = [
                    (full, old, value)
                    for (full, old), (_, value) in zip(olds.items(), entries, strict=True)
                ]
            else:
                fulls = [((*w, *e), value) for e, value in entries]
                self._written = [(f, tree.get(before, f), value) for f, value in fulls]
        return self._written

    def rendered(self, at: tuple[str, ...]) -> Any:
        """The rendered new value at ``at``, or ``_UNCHANGED``."""
        new = self._news.get(at, _MISSING)
        if new is _MISSING:
            old, value = tree.get(self.before, at), tree.get(self.after, at)
            new = self._news[at] = _rendered(old, value)
        return new

    def rendered_entry(self, full: tuple[str, ...], old: Any, value: Any) -> Any:
        """``rendered(full)`` for a PATCH entry, whose old and new values are known."""
        new = self._news.get(full, _MISSING)
        if new is _MISSING:
            new = self._news[full] = _rendered(old, value)
        return new


def _rendered(old: Any, value: Any) -> Any:
    """``value`` as a listener is sent it, or ``_UNCHANGED`` (only serialised: not copied)."""
    return tree.render_to_send(value) if tree.changed(old, value) else _UNCHANGED


_MISSING: Any = object()
_UNCHANGED: Any = object()


# One listener's event for one commit: its frame, and whether all it says is "removed".
Event = tuple[bytes, bool]


def _event_for(lpath: tuple[str, ...], commit: _Commit) -> Event | None:
    """The event for a listener at ``lpath`` after one commit (a set, or a PATCH's entries)."""
    wpath = commit.wpath
    n = len(lpath)
    w = len(wpath)
    if w <= n and wpath != lpath[:w]:
        return None
    if w > n and wpath[:n] != lpath:
        return None
    if commit.entries is None:
        at = lpath if w <= n else wpath
        new = commit.rendered(at)
        return None if new is _UNCHANGED else (frame("put", at[n:], new), new is None)
    return _patch_event(lpath, commit)


def _patch_event(lpath: tuple[str, ...], commit: _Commit) -> Event | None:
    """One event for one PATCH, so a listener sees each commit whole (never half of it).

    Entries below the listener become one ``patch`` whose keys are their paths relative to
    the patch location (``"queue/t/id"``; single keys stay plain, as Firebase sends them).
    An entry at or above the listener replaces all of it: then one ``put "/"`` of the new
    value. A PATCH written far above a small listener therefore costs that listener only the
    entries it covers, not a re-send of its whole value.
    """
    n = len(lpath)
    rel = commit.wpath[n:]  # where the patch event is addressed, relative to the listener
    cut = n + len(rel)
    changes: dict[str, Any] = {}
    removes_only = True
    last = n - 1
    tip = lpath[last] if n else ""  # most entries beside the listener differ here already
    for full, old, value in commit.written():
        if len(full) <= n:
            if full != lpath[: len(full)]:
                continue  # beside the listener: not its business
            new = commit.rendered(lpath)
            return None if new is _UNCHANGED else (frame("put", (), new), new is None)
        if n and (full[last] != tip or full[:n] != lpath):
            continue
        new = commit.rendered_entry(full, old, value)
        if new is not _UNCHANGED:
            changes["/".join(full[cut:])] = new
            removes_only = removes_only and new is None
    if not changes:
        return None
    return frame("patch", rel, changes), removes_only


def _deepest_first(listener: Listener) -> int:
    return -len(listener.path)


class Hub:
    """The listeners of every namespace."""

    def __init__(self, max_queued_bytes: int = MAX_QUEUED_BYTES) -> None:
        self.max_queued_bytes = max_queued_bytes
        self.by_ns: dict[str, set[Listener]] = {}
        # Each namespace's listeners in the order a commit reaches them (made on first need
        # after a change): the most specific first. A deep listener's event is small and is
        # usually the one a process waits on (a cloud's inbox, a maker's replies), while
        # a listener high up (the dispatcher's) gets the big one: each send wakes a process
        # that may take the CPU from the server before the next send.
        self._order: dict[str, list[Listener]] = {}
        self.dropped = 0  # listeners closed for falling too far behind

    def add(self, ns: str, listener: Listener, snapshot: Any) -> None:
        """Register ``listener`` and queue its initial ``put`` of ``snapshot``."""
        self.by_ns.setdefault(ns, set()).add(listener)
        self._order.pop(ns, None)
        first = frame("put", (), tree.render(snapshot))
        # A big location must not count as falling behind before the client could read it.
        listener.limit = max(self.max_queued_bytes, 2 * len(first))
        listener.push(first)

    def remove(self, ns: str, listener: Listener) -> None:
        """Forget ``listener``."""
        group = self.by_ns.get(ns)
        if group is not None:
            group.discard(listener)
            self._order.pop(ns, None)
            if not group:
                del self.by_ns[ns]

    def publish(
        self,
        ns: str,
        wpath: Sequence[str],
        entries: Sequence[tuple[Sequence[str], Any]] | None,
        before: Any,
        after: Any,
    ) -> None:
        """Queue the frames of one committed write (a set, or a PATCH's entries)."""
        group = self.by_ns.get(ns)
        if not group:
            return
        order = self._order.get(ns)
        if order is None:
            order = self._order[ns] = sorted(group, key=_deepest_first)
        commit = _Commit(wpath, entries, before, after)
        cache: dict[tuple[str, ...], Event | None] = {}
        removals: list[tuple[Listener, bytes]] = []
        for listener in order:  # never changed, only replaced, when one is removed
            if listener.closed:
                continue
            event = cache.get(listener.path, _MISSING)
            if event is _MISSING:
                try:
                    event = cache[listener.path] = _event_for(listener.path, commit)
                except Exception:  # noqa: BLE001 - one broken stream must not cost the others
                    self._cut_off(ns, listener)
                    continue
            if event is None:
                continue
            if event[1]:
                # All it says is that something went (a cloud's inbox entry after its
                # completion, say): nobody waits on that, so it goes after the others.
                removals.append((listener, event[0]))
            else:
                self._send(ns, listener, event[0], after)
        for listener, data in removals:
            self._send(ns, listener, data, after)

    def _send(self, ns: str, listener: Listener, data: bytes, after: Any) -> None:
        """Push one listener its frame, unless it may no longer read (then it is closed)."""
        try:
            if listener.check is not None and not listener.check(after):
                listener.close("Permission denied")
                return
            listener.push(data)
        except Exception:  # noqa: BLE001 - one broken stream must not cost the others
            self._cut_off(ns, listener)
            return
        if listener.overflowed:
            self.dropped += 1
            self.remove(ns, listener)

    def _cut_off(self, ns: str, listener: Listener) -> None:
        _log.exception("localdb: a listener failed; cutting it off")
        # Cut off, it reconnects and resyncs, instead of silently missing a commit.
        with contextlib.suppress(Exception):
            listener._overflow()
        self.dropped += 1
        self.remove(ns, listener)

    def close_all(self) -> None:
        """Close every stream (server shutdown)."""
        for group in list(self.by_ns.values()):
            for listener in list(group):
                listener.close()
