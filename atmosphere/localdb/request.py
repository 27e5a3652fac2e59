"""Parsing one HTTP request: path, parameters, headers and the JSON body encoding."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import orjson

from atmosphere.rtdb.keys import is_valid_key
from atmosphere.rtdb.values import MAX_DEPTH

RULES_PATH = "/.settings/rules.json"
_NS = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TIMEOUT = re.compile(r"(\d{1,12})(ms|s|min)")
_TIMEOUT_UNITS = {"ms": 1, "s": 1000, "min": 60_000}
_WRITE_SIZE_LIMITS = {"tiny", "small", "medium", "large", "unlimited"}


class HttpError(Exception):
    """An answer other than success: status and Firebase's ``{"error": ...}`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_params(query_string: bytes) -> dict[str, str]:
    """Query parameters decoded with ``unquote`` (a ``+`` stays a plus); repeats are errors."""
    params: dict[str, str] = {}
    if not query_string:
        return params
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name:
            name = unquote(name, errors="strict")
        if name in params:
            raise HttpError(400, f"Query parameter {name} may be given only once")
        params[name] = unquote(value, errors="strict") if "%" in value else value
    return params


def parse_path(raw_path: bytes) -> list[str]:
    """The location addressed by a ``/a/b.json`` path; raise HttpError when it is not valid."""
    text = raw_path.decode("latin-1")
    if not text.endswith(".json"):
        raise HttpError(404, "append .json to your request URI to use the REST API")
    segments = [unquote(s, errors="strict") if "%" in s else s for s in text[:-5].split("/") if s]
    last = len(segments) - 1
    for i, s in enumerate(segments):
        if not is_valid_key(s) and not (s == ".priority" and i == last):
            raise HttpError(400, "Invalid token in path")
    if len(segments) > MAX_DEPTH:
        raise HttpError(400, "Invalid path: too deep (32 levels at most)")
    return segments


def check_namespace(name: str) -> str:
    """A valid ``ns`` name (letters, digits, ``-`` and ``_``)."""
    if not _NS.fullmatch(name):
        raise HttpError(400, "Invalid namespace name")
    return name


def check_common_params(params: dict[str, str]) -> None:
    """Validate ``print``, ``format``, ``timeout``, ``writeSizeLimit`` and ``shallow``."""
    p = params.get("print")
    if p is not None and p not in ("pretty", "silent"):
        raise HttpError(400, "print must be pretty or silent")
    f = params.get("format")
    if f is not None and f != "export":
        raise HttpError(400, "format must be export")
    t = params.get("timeout")
    if t is not None:
        m = _TIMEOUT.fullmatch(t)
        ms = int(m.group(1)) * _TIMEOUT_UNITS[m.group(2)] if m else 0
        if not 0 < ms <= 15 * 60_000:
            raise HttpError(400, "timeout must be a positive duration of at most 15min")
    w = params.get("writeSizeLimit")
    if w is not None and w not in _WRITE_SIZE_LIMITS:
        raise HttpError(400, "writeSizeLimit must be tiny, small, medium, large or unlimited")
    s = params.get("shallow")
    if s is not None and s not in ("true", "false"):
        raise HttpError(400, "shallow must be true or false")


def dump(value: Any, pretty: bool = False) -> bytes:
    """JSON body bytes (UTF-8)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
