"""JSON with // and /* */ comments, as firebase-tools sends the raw rules file."""

from __future__ import annotations

import json
from typing import Any

from .errors import RulesError


def load_jsonc(text: str) -> Any:
    """Parse JSON that may contain comments; errors name the line and column."""
    stripped = strip_comments(text)
    try:
        return json.loads(stripped, strict=False, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise RulesError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def strip_comments(text: str) -> str:
    """Blank out comments outside strings, keeping every other character where it was."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line, col = _position(text, i)
                raise RulesError(f"unterminated /* comment at line {line} column {col}")
            out.append(_blank(text[i : end + 2]))
            i = end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the JSON string starting at `start` (or the end of text if unterminated)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return len(text)


def _blank(comment: str) -> str:
    # Newlines stay so that json's line numbers still match the original text.
    return "".join(c if c == "\n" else " " for c in comment)


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RulesError(f"duplicate key {key!r} in rules JSON")
        result[key] = value
    return result
