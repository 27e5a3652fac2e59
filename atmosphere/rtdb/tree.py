"""The immutable JSON tree: reads, path-copying writes, rendering, shallow and ETags.

A tree is plain JSON: nested dicts with str keys and primitive leaves, never None and never an
empty dict. Priorities (never produced by firebase-admin) live in the stored form as a
``.priority`` key, and a primitive with a priority as ``{".value": v, ".priority": p}``; the
rendered form drops them.

Two ways to write: ``set_many``/``update`` copy the dicts on the written paths (the old root
stays a valid tree: used where security rules compare the whole old and new trees), and
``apply_in_place``/``update_in_place`` change those dicts in place (O(depth) however wide the
objects are: used for admin writes, with ``Before`` keeping the replaced values readable).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

NULL_ETAG = "null_etag"

Path = Sequence[str]


def get(root: Any, path: Path) -> Any:
    """Return the stored subtree at ``path`` (None if absent)."""
    if type(root) is Before:
        return root.get(path)
    node = root
    for key in path:
        # A primitive with a priority ({".value": v, ".priority": p}) has no children but its
        # priority, and a stored object no other dotted key: only ".value" needs refusing.
        if type(node) is not dict or key == ".value":
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def set_many(root: Any, writes: Sequence[tuple[Path, Any]]) -> Any:
    """Return a new root with each (path, stored value) written in order; None deletes."""
    return _write_all(root, writes, set())


def update(root: Any, base: Path, entries: Sequence[tuple[Path, Any]]) -> Any:
    """Return a new root with each (path relative to ``base``, value) written (a PATCH)."""
    return _update(root, base, entries, set())


class _Owned:
    """Claims every dict as this batch's own: ``_set`` then changes them in place."""

    def __contains__(self, item: object) -> bool:
        return True

    def add(self, item: object) -> None:
        """Nothing to remember."""


_IN_PLACE: Any = _Owned()


def apply_in_place(
    root: Any, writes: Sequence[tuple[Path, Any]], owned: set[int] | None = None
) -> Any:
    """Write each (path, value) by changing the dicts on the paths; return the new root.

    O(depth) per write whatever the width of the objects on the way (path copying costs
    the width of each). The values that were replaced are left intact, so whoever took them
    beforehand (``Before``) still sees the old data. With ``owned`` (another thread reads an
    older root) only the dicts whose ids it holds change in place; any other dict on a path
    is copied once and the copy joins ``owned``.
    """
    return _write_all(root, writes, _IN_PLACE if owned is None else owned)


def update_in_place(
    root: Any, base: Path, entries: Sequence[tuple[Path, Any]], owned: set[int] | None = None
) -> Any:
    """``update`` by changing the dicts on the paths (see ``apply_in_place``); the new root."""
    return _update(root, base, entries, _IN_PLACE if owned is None else owned)


def patch_in_place(
    root: Any, base: Path, entries: Sequence[tuple[Path, Any]], owned: set[int] | None = None
) -> Before:
    """``update_in_place``, keeping what each entry replaced: a ``Before`` of the new root (its
    ``after``) whose ``olds`` are the entries' full paths, in order. An in-place write takes
    the value it replaces on its way, so no second walk per entry reads it beforehand."""
    olds: dict[tuple[str, ...], Any] = {}
    after = _update(root, base, entries, _IN_PLACE if owned is None else owned, olds)
    return Before(after, olds)


def _write_all(root: Any, writes: Sequence[tuple[Path, Any]], fresh: set[int]) -> Any:
    # ``fresh``: the dicts this batch may change in place (see ``_set``).
    for path, value in writes:
        root = _set(root, path, 0, value, fresh)
    return root


def _update(
    root: Any,
    base: Path,
    entries: Sequence[tuple[Path, Any]],
    fresh: set[int],
    olds: dict[tuple[str, ...], Any] | None = None,
) -> Any:
    """Write the entries below ``base``; with ``olds``, record each one's replaced value under
    its full path (entries never overlap, so each one's old value is the tree's before all)."""
    if not entries:
        return root
    node = get(root, base)
    in_place = fresh is _IN_PLACE
    prefix = tuple(base)
    for rel, value in entries:
        old = _replaced_in_place(node, rel, value) if in_place else _NOT_DONE
        if old is _NOT_DONE:
            if olds is not None:
                old = get(node, rel)
            node = _set(node, rel, 0, value, fresh)
        if olds is not None:
            olds[(*prefix, *rel)] = old
    return _set(root, base, 0, node, fresh)


class _NotDone:
    """What the in-place fast paths return when ``_set`` must do the write."""


_NOT_DONE: Any = _NotDone()


def _replaced_in_place(node: Any, path: Path, value: Any) -> Any:
    """Do the common in-place write directly; the value it replaced (None: nothing), or
    ``_NOT_DONE`` (nothing changed) when ``_set`` must do it."""
    if value is None:
        return _delete_in_place(node, path)
    return _assign_in_place(node, path, value)


def _assign_in_place(node: Any, path: Path, value: Any) -> Any:
    """A value stored where every dict on the way exists as a plain object; the value it
    replaced. ``_NOT_DONE`` for paths through primitives, ``.value`` or ``.priority``."""
    if not path or type(node) is not dict:
        return _NOT_DONE
    last = path[-1]
    if last == ".priority" or ".value" in node:
        return _NOT_DONE
    for key in path[:-1]:
        node = node.get(key)
        if type(node) is not dict or ".value" in node:
            return _NOT_DONE
    old = node.get(last)
    node[last] = value
    return old


def _delete_in_place(node: Any, path: Path) -> Any:
    """The common in-place deletion, done directly (half of a job's entries are deletions: its
    queue entry, inbox entry and outcome): the key is taken out, and an object it empties is
    taken out of its parent in turn; the value deleted (None: nothing was there). ``_NOT_DONE``
    when an object would be left a lone ``.priority`` or ``.value``, or ``node`` itself would
    empty: ``_set`` collapses those.
    """
    if not path or type(node) is not dict:
        return _NOT_DONE
    top = node
    for key in path[:-1]:
        if key == ".value":
            return None  # no children (as get() reads it): nothing to delete
        node = node.get(key)
        if type(node) is not dict:
            return None  # absent, or a primitive: nothing below it to delete
    last = path[-1]
    if last == ".value" or last not in node:
        return None
    if last == ".priority":
        return _NOT_DONE
    if len(node) > 2:  # (the usual case: nothing can empty or collapse)
        return node.pop(last)
    old = node[last]
    return old if _delete_pruning(top, path) else _NOT_DONE


def _delete_pruning(node: dict[str, Any], path: Path) -> bool:
    """``_delete_in_place`` of a key that is there, from an object that may empty or collapse."""
    chain = [node]  # chain[d] holds path[d]
    for key in path[:-1]:
        node = node[key]
        chain.append(node)
    for depth in range(len(path) - 1, -1, -1):
        obj = chain[depth]
        if len(obj) == 1:
            continue  # it empties: taken out of its parent instead
        if len(obj) == 2 and (".priority" in obj or ".value" in obj):
            return False  # left a lone .priority (which goes) or .value (a primitive)
        del obj[path[depth]]
        return True
    return False  # the whole object empties


class _Unknown:
    """The old value above a written path: not kept, and equal to nothing."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


UNKNOWN: Any = _Unknown()


class Before:
    """The tree as it was before an in-place write, readable at and below the written paths.

    Elsewhere the tree did not change, so reads go to the current root; right above a written
    path the old value was not kept and reads give ``UNKNOWN`` (never equal to anything).
    """

    __slots__ = ("after", "olds", "_above")

    def __init__(
        self,
        after: Any,
        olds: Sequence[tuple[tuple[str, ...], Any]] | dict[tuple[str, ...], Any],
    ) -> None:
        self.after = after
        self.olds = olds if type(olds) is dict else dict(olds)
        self._above: set[tuple[str, ...]] | None = None  # proper prefixes of written paths

    def get(self, path: Path) -> Any:
        """The old value at ``path`` (O(depth), however many paths were written)."""
        p = tuple(path)
        olds = self.olds
        for k in range(len(p), -1, -1):
            written = p[:k]
            if written in olds:
                return get(olds[written], p[k:])
        if self._above is None:
            self._above = {w[:k] for w in olds for k in range(len(w))}
        if p in self._above:
            return UNKNOWN
        return get(self.after, p)


def set_one(root: Any, path: Path, value: Any) -> Any:
    """Return a new root with ``value`` written at ``path``."""
    return _set(root, path, 0, value, set())


def _set(node: Any, path: Path, i: int, value: Any, fresh: set[int]) -> Any:
    # Walk down copying each dict on the path (once per batch: ``fresh`` holds the ids of
    # copies made by this batch, which may be changed in place), then prune upwards.
    n = len(path)
    if i == n:
        return value
    if value is None and get(node, path[i:]) is None:
        return node  # deleting nothing changes nothing (a primitive on the way stays)
    if i == n - 1 and type(node) is dict and ".value" not in node and path[i] != ".priority":
        d = _own(node, fresh)  # the common case, one level: no walk
        if value is not None:
            d[path[i]] = value
            return d
        d.pop(path[i], None)
        return _collapse(d)
    parents: list[dict[str, Any]] = []
    for depth in range(i, n):
        key = path[depth]
        last = depth == n - 1
        if type(node) is dict and (".value" not in node or (last and key == ".priority")):
            d = _own(node, fresh)
        else:
            # Writing below a primitive replaces it, except a priority kept beside its value.
            d = {".value": node} if last and key == ".priority" and node is not None else {}
            fresh.add(id(d))
        parents.append(d)
        node = d.get(key)
    result = value
    for depth in range(n - 1, i - 1, -1):
        d = parents[depth - i]
        key = path[depth]
        if result is None:
            d.pop(key, None)
        else:
            d[key] = result
        result = _collapse(d)
    return result


def _own(node: dict[str, Any], fresh: set[int]) -> dict[str, Any]:
    """``node`` itself if this batch made it, else a copy that this batch now owns."""
    if fresh is _IN_PLACE or id(node) in fresh:
        return node
    d = dict(node)
    fresh.add(id(d))
    return d


def _collapse(d: dict[str, Any]) -> Any:
    """An emptied object vanishes; a lone ``.value`` becomes its primitive."""
    if not d:
        return None
    if len(d) == 1:
        only = next(iter(d))
        if only == ".priority":
            return None
        if only == ".value":
            return d[".value"]
    return d


def _is_array_key(k: str) -> bool:
    return k.isdigit() and k.isascii() and (k == "0" or k[0] != "0") and len(k) < 10


def render(node: Any) -> Any:
    """The value as clients see it: priorities dropped, array-like objects as lists."""
    if type(node) is not dict:
        return node
    if ".value" in node:
        return node[".value"]
    out = {k: render(v) for k, v in node.items() if k != ".priority"}
    return as_array_if_array_like(out)


def render_to_send(node: Any) -> Any:
    """``render`` for a value about to be serialised and dropped (an event's data): a flat
    object with nothing to drop (a job's record, say) comes back itself, not copied, so
    nothing may change what this returns."""
    if type(node) is dict and ".value" not in node and ".priority" not in node:
        for child in node.values():
            if type(child) is dict:
                return render(node)
        return as_array_if_array_like(node)
    return render(node)


def as_array_if_array_like(out: dict[str, Any]) -> Any:
    """Apply Firebase's array rule: all keys integers and max key < 2 x count."""
    if not out:
        return out
    max_key = -1
    for k in out:
        if not _is_array_key(k):
            return out
        n = int(k)
        if n > max_key:
            max_key = n
    if max_key >= 2 * len(out):
        return out
    arr: list[Any] = [None] * (max_key + 1)
    for k, v in out.items():
        arr[int(k)] = v
    return arr


def shallow(node: Any) -> Any:
    """The ``shallow=true`` view: primitives as is, each child of an object as ``true``."""
    if type(node) is not dict:
        return node
    if ".value" in node:
        return node[".value"]
    return as_array_if_array_like({k: True for k in node if k != ".priority"})


def export(node: Any) -> Any:
    """The ``format=export`` view: the stored form, priorities included, never arrays."""
    return node


def etag(node: Any) -> str:
    """ETag of one location: base64 sha1 of its canonical JSON; ``null_etag`` when empty."""
    if node is None:
        return NULL_ETAG
    digest = hashlib.sha1(orjson.dumps(node, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.b64encode(digest).decode("ascii")


def changed(before: Any, after: Any) -> bool:
    """Whether two subtrees differ (path copying makes unchanged subtrees identical objects)."""
    return before is not after and before != after


def overlapping(paths: Sequence[Path]) -> tuple[Path, Path] | None:
    """Two paths of one multi-path update where the first is the second or an ancestor of it
    (Firebase refuses such an update), or None.

    Each path's keys are joined by "\x00", which no valid key holds: the strings sort as the
    paths do, a path right before those under it, so this is O(n log n) string comparisons
    (sorting the paths as tuples compared them key by key, a third slower on a job's PATCH).
    """
    by_key: dict[str, Path] = {}
    for path in paths:
        key = "\x00".join(path)
        if key in by_key:
            return tuple(by_key[key]), tuple(path)
        by_key[key] = path
    ordered = sorted(by_key)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.startswith(a) and (not a or b[len(a)] == "\x00"):
            return tuple(by_key[a]), tuple(by_key[b])
    return None
