"""Run-time semantics of operators and string methods: strict types, errors instead of coercion."""

from __future__ import annotations

import re
from typing import Any

from .snapshot import EvalError


def kind(value: Any) -> str:
    """The rules-language type of a value: null, boolean, number, string or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def equals(left: Any, right: Any) -> bool:
    """Strict equality: different types are never equal (no JavaScript coercion)."""
    left_kind = kind(left)
    if left_kind != kind(right):
        return False
    if left_kind == "object":
        # val() of a parent node is an opaque sentinel; only auth-like dicts compare by value.
        return isinstance(left, dict) and isinstance(right, dict) and left == right
    return bool(left == right)


def not_equals(left: Any, right: Any) -> bool:
    """The negation of equals."""
    return not equals(left, right)


def _ordered(left: Any, right: Any) -> None:
    left_kind = kind(left)
    if left_kind not in ("number", "string") or left_kind != kind(right):
        raise EvalError(f"cannot compare {left_kind} with {kind(right)}")


def less(left: Any, right: Any) -> bool:
    """left < right for two numbers or two strings."""
    _ordered(left, right)
    return bool(left < right)


def less_equal(left: Any, right: Any) -> bool:
    """left <= right for two numbers or two strings."""
    _ordered(left, right)
    return bool(left <= right)


def greater(left: Any, right: Any) -> bool:
    """left > right for two numbers or two strings."""
    _ordered(left, right)
    return bool(left > right)


def greater_equal(left: Any, right: Any) -> bool:
    """left >= right for two numbers or two strings."""
    _ordered(left, right)
    return bool(left >= right)


def number_text(value: int | float) -> str:
    """A number as JavaScript prints it in string concatenation (1.0 -> "1")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def add(left: Any, right: Any) -> Any:
    """Number addition, or string concatenation when either side is a string."""
    left_kind, right_kind = kind(left), kind(right)
    if left_kind == right_kind == "number":
        return left + right
    if left_kind == right_kind == "string":
        return left + right
    if {left_kind, right_kind} == {"string", "number"}:
        return _as_text(left) + _as_text(right)
    raise EvalError(f"cannot add {left_kind} and {right_kind}")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else number_text(value)


def _numbers(left: Any, right: Any) -> None:
    if kind(left) != "number" or kind(right) != "number":
        raise EvalError("arithmetic needs two numbers")


def subtract(left: Any, right: Any) -> Any:
    """left - right for numbers."""
    _numbers(left, right)
    return left - right


def multiply(left: Any, right: Any) -> Any:
    """left * right for numbers."""
    _numbers(left, right)
    return left * right


def divide(left: Any, right: Any) -> Any:
    """left / right for numbers; dividing by zero is an error."""
    _numbers(left, right)
    if right == 0:
        raise EvalError("division by zero")
    return left / right


def modulo(left: Any, right: Any) -> Any:
    """left % right for numbers, with JavaScript's sign of the dividend."""
    _numbers(left, right)
    if right == 0:
        raise EvalError("modulo by zero")
    result = abs(left) % abs(right)
    return -result if left < 0 else result


def negate(value: Any) -> Any:
    """Unary minus on a number."""
    if kind(value) != "number":
        raise EvalError("unary minus needs a number")
    return -value


def boolean(value: Any) -> bool:
    """Operands of ! && || ?: must be booleans; anything else is an error, never truthiness."""
    if value is True or value is False:
        return value
    raise EvalError(f"expected a boolean, got {kind(value)}")


def member(value: Any, name: str) -> Any:
    """value.name: a field of auth-like objects (null if absent) or a string's length."""
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, str) and name == "length":
        return len(value)
    raise EvalError(f"no property {name!r} on {kind(value)}")


def index(value: Any, key: Any) -> Any:
    """value[key] on auth-like objects."""
    if isinstance(value, dict) and isinstance(key, str):
        return value.get(key)
    raise EvalError(f"cannot index {kind(value)}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise EvalError("expected a string argument")
    return value


def _matches(text: str, pattern: Any) -> bool:
    if not isinstance(pattern, re.Pattern):
        raise EvalError("matches() takes a regular expression literal")
    return pattern.search(text) is not None


# name -> (min args, max args, implementation); the receiver is a str.
STRING_METHODS: dict[str, tuple[int, int, Any]] = {
    "contains": (1, 1, lambda s, sub: _text(sub) in s),
    "beginsWith": (1, 1, lambda s, prefix: s.startswith(_text(prefix))),
    "endsWith": (1, 1, lambda s, suffix: s.endswith(_text(suffix))),
    "replace": (2, 2, lambda s, old, new: s.replace(_text(old), _text(new))),
    "toLowerCase": (0, 0, lambda s: s.lower()),
    "toUpperCase": (0, 0, lambda s: s.upper()),
    "matches": (1, 1, _matches),
}
