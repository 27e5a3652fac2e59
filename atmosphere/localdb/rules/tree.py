"""The rules JSON turned into a tree of nodes holding compiled rules, checked as it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compiler import Env, Expr, compile_expression
from .errors import RulesError
from .snapshot import EvalError

# A rule is a compiled expression, or a bool when it is a constant (the common case: skip
# building an Env at all), or None when the node does not define it.
Rule = Expr | bool | None

RULE_KEYS = (".read", ".write", ".validate")
INDEX_KEY = ".indexOn"
_BAD_KEY_CHARS = frozenset("./#[]$")


@dataclass(slots=True)
class RuleNode:
    """One location of the rules tree: its rules, named children and at most one wildcard."""

    read: Rule = None
    write: Rule = None
    validate: Rule = None
    index_on: tuple[str, ...] = ()
    children: dict[str, RuleNode] = field(default_factory=dict)
    wildcard: str | None = None  # "$uid"
    wildcard_node: RuleNode | None = None
    validates_any: bool = False  # a .validate here or anywhere below
    writes_any: bool = False  # a .write that is not constant false here or anywhere below

    def step(self, key: str) -> tuple[RuleNode, str | None] | None:
        """The node for child `key` and the variable it binds; a named child beats the wildcard."""
        named = self.children.get(key)
        if named is not None:
            return named, None
        if self.wildcard_node is not None:
            return self.wildcard_node, self.wildcard
        return None


def evaluate(rule: Expr, env: Env) -> bool:
    """Run a compiled rule; errors count as false."""
    try:
        return rule(env) is True
    except (EvalError, ArithmeticError, TypeError, ValueError):
        return False


def build_tree(rules: Any) -> RuleNode:
    """Check and compile the value of the top-level "rules" key."""
    return _build(rules, ("rules",), frozenset())


def _build(obj: Any, where: tuple[str, ...], scope: frozenset[str]) -> RuleNode:
    if not isinstance(obj, dict):
        raise RulesError(f"{'/'.join(where)}: expected an object of rules, got {_json_type(obj)}")
    node = RuleNode()
    for key, value in obj.items():
        if key.startswith("."):
            _set_rule(node, key, value, where, scope)
        elif key.startswith("$"):
            _set_wildcard(node, key, value, where, scope)
        else:
            _check_key(key, where)
            node.children[key] = _build(value, (*where, key), scope)
    below = list(node.children.values())
    if node.wildcard_node is not None:
        below.append(node.wildcard_node)
    # A constant-true .validate checks nothing, so subtrees holding only those are skipped.
    checks_here = node.validate is not None and node.validate is not True
    node.validates_any = checks_here or any(c.validates_any for c in below)
    grants_here = node.write is not None and node.write is not False
    node.writes_any = grants_here or any(c.writes_any for c in below)
    return node


def _set_rule(
    node: RuleNode, key: str, value: Any, where: tuple[str, ...], scope: frozenset[str]
) -> None:
    location = "/".join((*where, key))
    if key == INDEX_KEY:
        node.index_on = _index_fields(value, location)
        return
    if key not in RULE_KEYS:
        known = ", ".join((*RULE_KEYS, INDEX_KEY))
        raise RulesError(f"{location}: unknown rule key {key!r} (expected one of {known})")
    setattr(node, key[1:], compile_rule(value, scope, location))


def compile_rule(value: Any, scope: frozenset[str], location: str) -> Rule:
    """A .read/.write/.validate value (JSON boolean or expression string) as a Rule."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise RulesError(f"{location}: expected a boolean or an expression string")
    text = value.strip()
    if text in ("true", "false"):
        return text == "true"
    return compile_expression(value, scope, location)


def _index_fields(value: Any, location: str) -> tuple[str, ...]:
    fields = [value] if isinstance(value, str) else value
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise RulesError(f"{location}: expected a field name or a list of field names")
    return tuple(fields)


def _set_wildcard(
    node: RuleNode, key: str, value: Any, where: tuple[str, ...], scope: frozenset[str]
) -> None:
    location = "/".join((*where, key))
    if node.wildcard is not None:
        raise RulesError(f"{location}: a second wildcard beside {node.wildcard} at the same level")
    if len(key) < 2 or any(c in _BAD_KEY_CHARS for c in key[1:]):
        raise RulesError(f"{location}: invalid wildcard name")
    if key in scope:
        raise RulesError(f"{location}: wildcard {key} is already bound above")
    node.wildcard = key
    node.wildcard_node = _build(value, (*where, key), scope | {key})


def _check_key(key: str, where: tuple[str, ...]) -> None:
    if not key or any(c in _BAD_KEY_CHARS for c in key):
        raise RulesError(f"{'/'.join(where)}: invalid child key {key!r}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "an object"
