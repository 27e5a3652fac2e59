"""Recursive-descent parser that compiles a rule expression into closures, once, at load time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import operators as ops
from .errors import RulesError
from .lexer import LexError, Token, tokenize
from .snapshot import SNAPSHOT_METHODS, EvalError, Snapshot

NO_NEW_DATA: Any = object()  # Env.after in a .read rule, where newData does not exist


class Env:
    """Everything an expression can see while one rule is evaluated."""

    __slots__ = ("auth", "vars", "before", "after", "path", "now")

    def __init__(
        self,
        auth: Any,
        vars: dict[str, str],
        before: Any,
        after: Any,
        path: tuple[str, ...],
        now: int,
    ) -> None:
        self.auth = auth
        self.vars = vars
        self.before = before
        self.after = after
        self.path = path
        self.now = now


Expr = Callable[[Env], Any]

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": ops.equals, "===": ops.equals, "!=": ops.not_equals, "!==": ops.not_equals,
    "<": ops.less, "<=": ops.less_equal, ">": ops.greater, ">=": ops.greater_equal,
    "+": ops.add, "-": ops.subtract, "*": ops.multiply, "/": ops.divide, "%": ops.modulo,
}  # fmt: skip
# Binary operators by precedence level, loosest first (&& and || are handled separately).
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("==", "===", "!=", "!=="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"),
)  # fmt: skip
_CONSTANTS = {"true": True, "false": False, "null": None}
_METHOD_ARITY: dict[str, list[tuple[int, int]]] = {}
for _table in (SNAPSHOT_METHODS, ops.STRING_METHODS):
    for _name, (_low, _high, _) in _table.items():
        _METHOD_ARITY.setdefault(_name, []).append((_low, _high))


def compile_expression(source: str, scope: frozenset[str], where: str) -> Expr:
    """Parse `source` into a closure; `scope` holds the $variables its wildcards bind."""
    try:
        tokens = tokenize(source)
    except LexError as exc:
        raise _error(where, source, str(exc), exc.pos) from None
    return _Parser(tokens, source, scope, where).parse()


def _error(where: str, source: str, message: str, pos: int) -> RulesError:
    return RulesError(f"{where}: {message} at column {pos + 1} of expression {source!r}")


class _Parser:
    def __init__(self, tokens: list[Token], source: str, scope: frozenset[str], where: str) -> None:
        self.tokens = tokens
        self.source = source
        self.scope = scope
        self.where = where
        self.index = 0

    def parse(self) -> Expr:
        expr = self.ternary()
        self.expect("eof")
        return expr

    # -- token helpers -------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def fail(self, message: str, token: Token | None = None) -> RulesError:
        return _error(self.where, self.source, message, (token or self.token).pos)

    def accept(self, *ops_: str) -> str | None:
        token = self.token
        if token.kind == "op" and token.value in ops_:
            self.index += 1
            return str(token.value)
        return None

    def expect(self, what: str) -> Token:
        token = self.token
        if what == "eof" and token.kind == "eof" or token.kind == "op" and token.value == what:
            self.index += 1
            return token
        wanted = "end of expression" if what == "eof" else repr(what)
        found = "end of expression" if token.kind == "eof" else repr(token.value)
        raise self.fail(f"expected {wanted} but found {found}")

    # -- grammar -------------------------------------------------------------------------------
    def ternary(self) -> Expr:
        condition = self.logical_or()
        if not self.accept("?"):
            return condition
        then = self.ternary()
        self.expect(":")
        other = self.ternary()
        return lambda env: then(env) if ops.boolean(condition(env)) else other(env)

    def logical_or(self) -> Expr:
        left = self.logical_and()
        while self.accept("||"):
            left = _or(left, self.logical_and())
        return left

    def logical_and(self) -> Expr:
        left = self.binary(0)
        while self.accept("&&"):
            left = _and(left, self.binary(0))
        return left

    def binary(self, level: int) -> Expr:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while op := self.accept(*_LEVELS[level]):
            left = _binary(_BINARY[op], left, self.binary(level + 1))
        return left

    def unary(self) -> Expr:
        if self.accept("!"):
            operand = self.unary()
            return lambda env: not ops.boolean(operand(env))
        if self.accept("-"):
            operand = self.unary()
            return lambda env: ops.negate(operand(env))
        return self.postfix(self.primary())

    def postfix(self, expr: Expr) -> Expr:
        while True:
            if self.accept("."):
                name_token = self.token
                if name_token.kind != "name":
                    raise self.fail("expected a property or method name")
                self.index += 1
                if self.accept("("):
                    expr = self.call(expr, name_token)
                else:
                    expr = _member(expr, name_token.value)
            elif self.accept("["):
                key = self.ternary()
                self.expect("]")
                expr = _index(expr, key)
            else:
                return expr

    def call(self, receiver: Expr, name_token: Token) -> Expr:
        args = self.arguments(")")
        name = str(name_token.value)
        arities = _METHOD_ARITY.get(name)
        if arities is None:
            raise self.fail(f"unknown method {name}()", name_token)
        if not any(low <= len(args) <= high for low, high in arities):
            raise self.fail(f"wrong number of arguments to {name}()", name_token)
        return _method(receiver, name, args)

    def arguments(self, closing: str) -> list[Expr]:
        args: list[Expr] = []
        if self.accept(closing):
            return args
        while True:
            args.append(self.ternary())
            if self.accept(closing):
                return args
            self.expect(",")

    def primary(self) -> Expr:
        token = self.token
        self.index += 1
        if token.kind in ("num", "str"):
            value = token.value
            return lambda env: value
        if token.kind == "regex":
            pattern = self.regex(token)
            return lambda env: pattern
        if token.kind == "var":
            return self.variable(token)
        if token.kind == "name":
            return self.name(token)
        if token.kind == "op" and token.value == "(":
            expr = self.ternary()
            self.expect(")")
            return expr
        if token.kind == "op" and token.value == "[":
            items = self.arguments("]")
            return lambda env: [item(env) for item in items]
        found = "end of expression" if token.kind == "eof" else repr(token.value)
        raise self.fail(f"unexpected {found}", token)

    def regex(self, token: Token) -> re.Pattern[str]:
        pattern, flags = token.value
        if flags.strip("i"):
            raise self.fail(f"unsupported regular expression flags {flags!r}", token)
        try:
            return re.compile(pattern, re.IGNORECASE if flags else 0)
        except re.error as exc:
            raise self.fail(f"bad regular expression: {exc}", token) from None

    def variable(self, token: Token) -> Expr:
        name = str(token.value)
        if name not in self.scope:
            raise self.fail(f"unknown variable {name} (no such wildcard above this rule)", token)
        return lambda env: env.vars[name]

    def name(self, token: Token) -> Expr:
        name = str(token.value)
        if name in _CONSTANTS:
            value = _CONSTANTS[name]
            return lambda env: value
        builtin = _BUILTINS.get(name)
        if builtin is None:
            raise self.fail(f"unknown name {name!r}", token)
        return builtin


def _or(left: Expr, right: Expr) -> Expr:
    return lambda env: ops.boolean(left(env)) or ops.boolean(right(env))


def _and(left: Expr, right: Expr) -> Expr:
    return lambda env: ops.boolean(left(env)) and ops.boolean(right(env))


def _binary(fn: Callable[[Any, Any], Any], left: Expr, right: Expr) -> Expr:
    return lambda env: fn(left(env), right(env))


def _member(expr: Expr, name: str) -> Expr:
    return lambda env: ops.member(expr(env), name)


def _index(expr: Expr, key: Expr) -> Expr:
    return lambda env: ops.index(expr(env), key(env))


def _method(receiver: Expr, name: str, args: list[Expr]) -> Expr:
    snapshot_entry = SNAPSHOT_METHODS.get(name)
    string_entry = ops.STRING_METHODS.get(name)

    def call(env: Env) -> Any:
        target = receiver(env)
        values = [arg(env) for arg in args]
        if isinstance(target, Snapshot):
            entry = snapshot_entry
        elif isinstance(target, str):
            entry = string_entry
        else:
            raise EvalError(f"{name}() called on {ops.kind(target)}")
        if entry is None or not entry[0] <= len(values) <= entry[1]:
            raise EvalError(f"no method {name}() with {len(values)} arguments here")
        return entry[2](target, *values)

    return call


def _new_data(env: Env) -> Snapshot:
    if env.after is NO_NEW_DATA:
        raise EvalError("newData is only available in .write and .validate rules")
    return Snapshot(env.after, env.path)


def _query(env: Env) -> Any:
    # Query-based rules (query.orderByChild ...) are not supported by the embedded server.
    raise EvalError("query is not supported")


_BUILTINS: dict[str, Expr] = {
    "auth": lambda env: env.auth,
    "now": lambda env: env.now,
    "data": lambda env: Snapshot(env.before, env.path),
    "root": lambda env: Snapshot(env.before, ()),
    "newData": _new_data,
    "query": _query,
}
