"""Tokens of the rules expression language (a JavaScript subset)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OPERATORS = (
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||",
    "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", "(", ")", "[", "]", ",", ".",
)  # fmt: skip
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_NAME = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
# After these a "/" divides; anywhere else it opens a regular expression literal.
_VALUE_END_KINDS = frozenset({"num", "str", "regex", "name", "var"})


class LexError(Exception):
    """A character sequence that is not a token; carries the offending offset."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    """One token: kind is num, str, regex, name, var, op or eof."""

    kind: str
    value: Any
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens, ending with an eof token."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        token, i = _next_token(source, i, tokens[-1] if tokens else None)
        tokens.append(token)
    tokens.append(Token("eof", None, n))
    return tokens


def _next_token(source: str, i: int, previous: Token | None) -> tuple[Token, int]:
    ch = source[i]
    if ch in "'\"":
        text, end = _read_string(source, i)
        return Token("str", text, i), end
    if ch.isdigit():
        match = _NUMBER.match(source, i)
        assert match is not None
        text = match.group()
        value: int | float = float(text) if match.group(1) or match.group(2) else int(text)
        return Token("num", value, i), match.end()
    if ch == "/" and not _divides(previous):
        pattern_flags, end = _read_regex(source, i)
        return Token("regex", pattern_flags, i), end
    match = _NAME.match(source, i)
    if match:
        kind = "var" if ch == "$" else "name"
        return Token(kind, match.group(), i), match.end()
    for op in OPERATORS:
        if source.startswith(op, i):
            return Token("op", op, i), i + len(op)
    raise LexError(f"unexpected character {ch!r}", i)


def _divides(previous: Token | None) -> bool:
    if previous is None:
        return False
    return previous.kind in _VALUE_END_KINDS or previous.value in (")", "]")


def _read_string(source: str, start: int) -> tuple[str, int]:
    quote, i = source[start], start + 1
    parts: list[str] = []
    while i < len(source):
        ch = source[i]
        if ch == quote:
            return "".join(parts), i + 1
        if ch == "\\":
            text, i = _read_escape(source, i)
            parts.append(text)
            continue
        parts.append(ch)
        i += 1
    raise LexError("unterminated string", start)


def _read_escape(source: str, i: int) -> tuple[str, int]:
    """Decode the escape at source[i] == '\\'; return the text and the index after it."""
    if i + 1 >= len(source):
        raise LexError("unterminated string", i)
    code = source[i + 1]
    if code in "ux":
        width = 4 if code == "u" else 2
        digits = source[i + 2 : i + 2 + width]
        if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise LexError(f"bad \\{code} escape", i)
        return chr(int(digits, 16)), i + 2 + width
    return _ESCAPES.get(code, code), i + 2


def _read_regex(source: str, start: int) -> tuple[tuple[str, str], int]:
    i, in_class = start + 1, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "/" and not in_class:
            end = i + 1
            while end < len(source) and source[end].isalpha():
                end += 1
            return (source[start + 1 : i], source[i + 1 : end]), end
        i += 1
    raise LexError("unterminated regular expression", start)
