"""Lazy RuleDataSnapshot: a (tree, path) pair resolved only when a method needs the value."""

from __future__ import annotations

from typing import Any


class EvalError(Exception):
    """An expression failed at run time; the rule containing it evaluates to false."""


class ObjectValue:
    """What val() returns for a node with children: Firebase exposes a sentinel, never the dict."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<object>"


OBJECT = ObjectValue()


class Snapshot:
    """The data at one path of a tree as the rules see it (data, newData, root)."""

    __slots__ = ("_tree", "path", "_value", "_resolved")

    def __init__(self, tree: Any, path: tuple[str, ...]) -> None:
        self._tree = tree
        self.path = path
        self._value: Any = None
        self._resolved = False

    def value(self) -> Any:
        """The raw JSON value here, or None when the node does not exist."""
        if not self._resolved:
            self._value = descend(self._tree, self.path)
            self._resolved = True
        return self._value

    def child(self, relative: Any) -> Snapshot:
        """The snapshot at a slash-separated path below this one."""
        parts = child_parts(relative)
        result = Snapshot(self._tree, self.path + parts)
        if self._resolved:
            result._value = descend(self._value, parts)
            result._resolved = True
        return result

    def parent(self) -> Snapshot:
        """The snapshot one level up; the root has no parent."""
        if not self.path:
            raise EvalError("parent() of the root")
        return Snapshot(self._tree, self.path[:-1])


def descend(value: Any, parts: tuple[str, ...]) -> Any:
    """Follow keys down a JSON tree; None as soon as a key is absent."""
    for key in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def child_parts(relative: Any) -> tuple[str, ...]:
    """Split a child() argument into keys; it must be a non-empty string."""
    if not isinstance(relative, str):
        raise EvalError("child path must be a string")
    parts = tuple(p for p in relative.split("/") if p)
    if not parts:
        raise EvalError("child path is empty")
    return parts


def _val(snap: Snapshot) -> Any:
    value = snap.value()
    return OBJECT if isinstance(value, dict) else value


def _exists(snap: Snapshot) -> bool:
    return snap.value() is not None


def _has_child(snap: Snapshot, relative: Any) -> bool:
    return descend(snap.value(), child_parts(relative)) is not None


def _has_children(snap: Snapshot, names: Any = None) -> bool:
    value = snap.value()
    if names is None:
        return isinstance(value, dict) and len(value) > 0
    if not isinstance(names, list):
        raise EvalError("hasChildren() takes a list of names")
    return all(descend(value, child_parts(name)) is not None for name in names)


def _is_number(snap: Snapshot) -> bool:
    value = snap.value()
    return isinstance(value, int | float) and not isinstance(value, bool)


def _get_priority(snap: Snapshot) -> None:
    # The embedded server does not store priorities.
    return None


# name -> (min args, max args, implementation)
SNAPSHOT_METHODS: dict[str, tuple[int, int, Any]] = {
    "val": (0, 0, _val),
    "child": (1, 1, Snapshot.child),
    "parent": (0, 0, Snapshot.parent),
    "exists": (0, 0, _exists),
    "hasChild": (1, 1, _has_child),
    "hasChildren": (0, 1, _has_children),
    "isString": (0, 0, lambda snap: isinstance(snap.value(), str)),
    "isNumber": (0, 0, _is_number),
    "isBoolean": (0, 0, lambda snap: isinstance(snap.value(), bool)),
    "getPriority": (0, 0, _get_priority),
}
