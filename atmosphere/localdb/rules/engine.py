"""Rules: decide reads and writes against a parsed rules file, the way Firebase RTDB does."""

from __future__ import annotations

import copy
import time
from typing import Any

from .compiler import NO_NEW_DATA, Env
from .errors import RulesError
from .jsonc import load_jsonc
from .snapshot import descend
from .tree import Rule, RuleNode, build_tree, evaluate


class Rules:
    """A compiled rules file: .read/.write cascade down, .validate must hold everywhere written."""

    __slots__ = ("_source", "_root")

    def __init__(self, source: dict[str, Any], root: RuleNode) -> None:
        self._source = source
        self._root = root

    @classmethod
    def parse(cls, text: str) -> Rules:
        """Compile rules file text (JSON with comments).

        Raises:
            RulesError: bad JSON (with line and column), an unknown rule key, or an
                expression that does not parse (with the rule's path and column).
        """
        return cls.from_json(load_jsonc(text))

    @classmethod
    def from_json(cls, document: Any) -> Rules:
        """Compile an already-decoded {"rules": {...}} document."""
        if not isinstance(document, dict) or set(document) != {"rules"}:
            raise RulesError('a rules file must be an object with exactly one key, "rules"')
        source = copy.deepcopy(document)
        return cls(source, build_tree(source["rules"]))

    @classmethod
    def allow_all(cls) -> Rules:
        """Anyone may read and write anything."""
        return cls.from_json({"rules": {".read": True, ".write": True}})

    @classmethod
    def deny_all(cls) -> Rules:
        """Nobody may read or write anything."""
        return cls.from_json({"rules": {".read": False, ".write": False}})

    def to_json(self) -> dict[str, Any]:
        """The rules as strict JSON (comments dropped), as GET /.settings/rules.json returns them."""
        return copy.deepcopy(self._source)

    def can_read(self, path: list[str], auth: dict[str, Any] | None, root: Any) -> bool:
        """Whether any .read rule at or above `path` grants this reader access."""
        location = tuple(path)
        node: RuleNode | None = self._root
        variables: dict[str, str] = {}
        now = _now_ms()
        for depth in range(len(location) + 1):
            assert node is not None
            rule = node.read
            if rule is True:
                return True
            if rule is not None and rule is not False:
                env = Env(auth, variables, root, NO_NEW_DATA, location[:depth], now)
                if evaluate(rule, env):
                    return True
            if depth == len(location):
                return False
            node = _step(node, location[depth], variables)
            if node is None:
                return False
        return False

    def can_write(
        self, path: list[str], auth: dict[str, Any] | None, root_before: Any, root_after: Any
    ) -> bool:
        """Whether a write at `path` turning root_before into root_after is allowed.

        Some .write at or above `path` must grant it, and every .validate must hold on
        the ancestors of `path` and on every node of the new value at and below it
        (nodes absent from root_after, i.e. deleted, are not validated). For a
        multi-path update, call this once per updated path with the same two trees.
        """
        location = tuple(path)
        now = _now_ms()
        walk = _write_walk(self._root, location, auth, root_before, root_after, now)
        if walk is None:
            return False
        target, variables, ancestors = walk
        for node, depth, scope in ancestors:
            if not _validates(
                node.validate, auth, scope, root_before, root_after, location[:depth], now
            ):
                return False
        if target is None or not target.validates_any:
            return True
        value = descend(root_after, location)
        checker = _TreeValidator(auth, root_before, root_after, now)
        return checker.check(target, value, location, variables)

    def may_write(self, path: list[str]) -> bool:
        """Whether some write at or below `path` could be granted to someone (False: none can).

        Decided from the rules alone, before any body or data is looked at: an expression
        counts as a possible grant.
        """
        node: RuleNode | None = self._root
        for key in path:
            assert node is not None
            if node.write is not None and node.write is not False:
                return True
            node = _step(node, key, {})
            if node is None:
                return False
        assert node is not None
        return node.writes_any

    def index_on(self, path: list[str]) -> list[str]:
        """The .indexOn fields declared at `path` (wildcards apply), or []."""
        node: RuleNode | None = self._root
        for key in path:
            assert node is not None
            node = _step(node, key, {})
            if node is None:
                return []
        assert node is not None
        return list(node.index_on)


_Ancestor = tuple[RuleNode, int, dict[str, str]]


def _write_walk(
    root: RuleNode, location: tuple[str, ...], auth: Any, before: Any, after: Any, now: int
) -> tuple[RuleNode | None, dict[str, str], list[_Ancestor]] | None:
    """Walk root -> location: None if no .write grants, else (node at location, vars, ancestors
    with a .validate to check)."""
    granted = False
    ancestors: list[_Ancestor] = []
    node: RuleNode | None = root
    variables: dict[str, str] = {}
    for depth in range(len(location) + 1):
        if node is None:
            break
        if not granted:
            granted = _grants(node.write, auth, variables, before, after, location[:depth], now)
        if depth == len(location):
            break
        if node.validate is not None:
            ancestors.append((node, depth, dict(variables)))
        node = _step(node, location[depth], variables)
    if not granted:
        return None
    return node, variables, ancestors


def _grants(
    rule: Rule, auth: Any, variables: dict[str, str], before: Any, after: Any,
    path: tuple[str, ...], now: int,
) -> bool:  # fmt: skip
    if rule is None or rule is False:
        return False
    if rule is True:
        return True
    return evaluate(rule, Env(auth, variables, before, after, path, now))


def _validates(
    rule: Rule, auth: Any, variables: dict[str, str], before: Any, after: Any,
    path: tuple[str, ...], now: int,
) -> bool:  # fmt: skip
    """A .validate passes if absent, if the node is deleted in the new data, or if it holds."""
    if rule is None or rule is True:
        return True
    if descend(after, path) is None:
        return True
    if rule is False:
        return False
    return evaluate(rule, Env(auth, variables, before, after, path, now))


class _TreeValidator:
    """Checks .validate on every node of the new value below the written location."""

    __slots__ = ("auth", "before", "after", "now")

    def __init__(self, auth: Any, before: Any, after: Any, now: int) -> None:
        self.auth = auth
        self.before = before
        self.after = after
        self.now = now

    def check(
        self, node: RuleNode, value: Any, path: tuple[str, ...], variables: dict[str, str]
    ) -> bool:
        """Whether `value` (the new data at `path`) and everything under it validates."""
        if value is None:
            return True
        rule = node.validate
        if rule is False:
            return False
        if rule is not None and rule is not True:
            env = Env(self.auth, variables, self.before, self.after, path, self.now)
            if not evaluate(rule, env):
                return False
        if not isinstance(value, dict):
            return True
        if node.wildcard_node is None:
            return all(
                self.check(child, value[key], (*path, key), variables)
                for key, child in node.children.items()
                if child.validates_any and key in value
            )
        return self._check_with_wildcard(node, value, path, variables)

    def _check_with_wildcard(
        self,
        node: RuleNode,
        value: dict[str, Any],
        path: tuple[str, ...],
        variables: dict[str, str],
    ) -> bool:
        wildcard_node = node.wildcard_node
        assert wildcard_node is not None and node.wildcard is not None
        for key, child_value in value.items():
            named = node.children.get(key)
            if named is not None:
                ok = not named.validates_any or self.check(
                    named, child_value, (*path, key), variables
                )
            elif wildcard_node.validates_any:
                bound = {**variables, node.wildcard: key}
                ok = self.check(wildcard_node, child_value, (*path, key), bound)
            else:
                ok = True
            if not ok:
                return False
        return True


def _step(node: RuleNode, key: str, variables: dict[str, str]) -> RuleNode | None:
    """Move to the child rule node for `key`, binding a wildcard variable if one matches."""
    found = node.step(key)
    if found is None:
        return None
    child, variable = found
    if variable is not None:
        variables[variable] = key
    return child


def _now_ms() -> int:
    return int(time.time() * 1000)
