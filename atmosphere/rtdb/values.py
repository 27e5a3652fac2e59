"""Validating and normalising incoming JSON values: keys, limits, arrays, server values."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .keys import VALID_KEYS_SEEN, is_valid_key

MAX_DEPTH = 32
MAX_STRING_BYTES = 10 * 1024 * 1024
# A string this short is within the limit whatever its characters (4 UTF-8 bytes at most each).
_SHORT_STRING = MAX_STRING_BYTES // 4
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_BODY_BYTES = 32 * 1024 * 1024  # the embedded server's default; bigger bodies get 413

BAD_JSON = "Invalid data; couldn't parse JSON object, array, or value."
BAD_KEY = (
    "Invalid data; couldn't parse JSON object, array, or value. "
    "Perhaps you're using invalid characters in your key names."
)
BAD_SV = "The request contains an unrecognized server value"
BAD_SURROGATE = "Invalid data; a string holds a lone surrogate (not valid UTF-8)."


class InvalidData(ValueError):
    """A request body or path that Firebase would refuse with 400."""


@dataclass(frozen=True, slots=True)
class ServerValue:
    """A ``{".sv": ...}`` placeholder, resolved at commit time."""

    kind: str  # "timestamp" or "increment"
    amount: int | float = 0


_TIMESTAMP = ServerValue("timestamp")  # (immutable: one will do)


def parse_json(body: bytes) -> Any:
    """Parse a request body; NaN/Infinity and malformed text raise InvalidData."""
    if not body.strip():
        raise InvalidData("Error: No data supplied.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits; the stdlib reads them (they become doubles later).
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidData(BAD_JSON) from exc
    # orjson also refuses lone surrogates ("\ud800"), which the stdlib lets through; such a
    # string cannot be stored or sent back as UTF-8, so it is the client's error, not ours.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidData(BAD_SURROGATE) from exc
    except RecursionError as exc:
        raise InvalidData(BAD_JSON) from exc
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class Normaliser:
    """Turns one parsed body into the stored form; remembers whether it holds server values.

    With ``now`` (the commit's time in ms) timestamps are resolved on the way, so a value
    whose only server values are timestamps (every job record's) needs no ``resolve`` pass:
    ``has_server_values`` then says whether any is left (an increment needs the stored value).
    """

    __slots__ = ("has_server_values", "now")

    def __init__(self, now: int | None = None) -> None:
        self.has_server_values = False
        self.now = now

    def value(self, v: Any, depth: int) -> Any:
        """Return the stored form of ``v`` (None when it stores nothing); raise InvalidData."""
        if v is None or v is True or v is False:
            return v
        t = type(v)
        if t is str:
            if len(v) * 4 > MAX_STRING_BYTES and len(v.encode("utf-8")) > MAX_STRING_BYTES:
                raise InvalidData("Invalid data; string value exceeds the maximum size (10 MB).")
            return v
        if t is int:
            return v if INT64_MIN <= v <= INT64_MAX else float(v)
        if t is float:
            if not math.isfinite(v):
                raise InvalidData(BAD_JSON)
            if v.is_integer() and -(2.0**63) <= v < 2.0**63:
                return int(v)
            return v
        if t is list:
            v = {str(i): item for i, item in enumerate(v) if item is not None}
            t = dict
        if t is dict:
            return self._object(v, depth)
        plain = _plain(v)
        if plain is not v:
            return self.value(plain, depth)
        raise InvalidData(BAD_JSON)

    def _object(self, d: dict[str, Any], depth: int) -> Any:
        if depth >= MAX_DEPTH:
            raise InvalidData("Invalid data; the data is nested too deeply (32 levels at most).")
        if ".sv" in d:
            return self._server_value(d)
        if ".value" in d:
            return self._value_with_priority(d, depth)
        out: dict[str, Any] = {}
        seen = VALID_KEYS_SEEN
        now = self.now if depth + 1 < MAX_DEPTH else None  # (deeper: value() refuses it)
        for key, child in d.items():
            # The usual key was seen valid before: no call (".priority" is never in it).
            if key not in seen and _is_priority(key, child, out):
                continue
            kind = type(child)
            if (
                kind is bool
                or (kind is str and len(child) <= _SHORT_STRING)
                or (kind is int and INT64_MIN <= child <= INT64_MAX)
            ):
                out[key] = child  # the common leaves, stored as parsed: no call per child
                continue
            if kind is float and -(2.0**63) <= child < 2.0**63:  # (False for NaN)
                out[key] = int(child) if child.is_integer() else child  # as value() stores it
                continue
            if kind is dict and now is not None and len(child) == 1:
                if child.get(".sv") == "timestamp":  # a job record's times: no call either
                    out[key] = now
                    continue
            stored = self.value(child, depth + 1)
            if stored is not None and stored != {}:
                out[key] = stored
        if not out or (len(out) == 1 and ".priority" in out):
            return None
        return out

    def _value_with_priority(self, d: dict[str, Any], depth: int) -> Any:
        if any(k not in (".value", ".priority") for k in d):
            raise InvalidData("Invalid data; .value must not have sibling children.")
        # A server value here is refused beside a priority: keep it unresolved to tell.
        now, self.now = self.now, None
        try:
            inner = self.value(d[".value"], depth)
        finally:
            self.now = now
        priority = _priority(d.get(".priority"))
        if inner is None or priority is None:
            return inner
        if isinstance(inner, dict):
            return {**inner, ".priority": priority}
        if isinstance(inner, ServerValue):
            raise InvalidData(BAD_SV)
        return {".value": inner, ".priority": priority}

    def _server_value(self, d: dict[str, Any]) -> ServerValue | int:
        if len(d) != 1:
            raise InvalidData(BAD_SV)
        spec = d[".sv"]
        if spec == "timestamp":
            if self.now is not None:
                return self.now
            self.has_server_values = True
            return _TIMESTAMP
        if type(spec) is dict and len(spec) == 1 and "increment" in spec:
            amount = spec["increment"]
            if type(amount) in (int, float) and math.isfinite(amount):
                self.has_server_values = True
                return ServerValue("increment", amount)
        raise InvalidData(BAD_SV)


def _plain(v: Any) -> Any:
    """The JSON type of a Python value written by code rather than parsed (a tuple, an enum
    member, a Mapping); ``v`` itself when it is none of those."""
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, (list, tuple)):
        return list(v)
    if isinstance(v, Mapping):
        return dict(v)
    return v


def _is_priority(key: Any, child: Any, out: dict[str, Any]) -> bool:
    """For a key not known valid: True for ``.priority`` (kept in ``out`` unless null), False
    for any other valid key; InvalidData for an invalid one."""
    if key == ".priority":
        priority = _priority(child)
        if priority is not None:
            out[key] = priority
        return True
    if type(key) is not str or not is_valid_key(key):
        raise InvalidData(BAD_KEY)
    return False


def _priority(p: Any) -> Any:
    if p is None:
        return None
    if type(p) in (int, float, str):
        return p
    raise InvalidData("Invalid data; .priority must be a string or a number.")


def normalise(value: Any, depth: int, now: int | None = None) -> tuple[Any, bool]:
    """Return (stored form of ``value``, whether it holds server values to ``resolve``);
    with ``now``, timestamps are resolved already (see ``Normaliser``)."""
    n = Normaliser(now)
    return n.value(value, depth), n.has_server_values


def add_numbers(current: Any, amount: int | float) -> int | float:
    """The ``increment`` server value: int64 arithmetic that overflows into a double."""
    if type(current) not in (int, float):
        return amount
    total: int | float = current + amount
    if type(total) is int and not INT64_MIN <= total <= INT64_MAX:
        return float(current) + float(amount)
    return total


def resolve(value: Any, now_ms: int, current: Any) -> Any:
    """Replace every ServerValue in ``value``; ``current`` is what is stored at the same place."""
    if type(value) is ServerValue:
        if value.kind == "timestamp":
            return now_ms
        if isinstance(current, dict) and ".value" in current:
            current = current[".value"]
        return add_numbers(current, value.amount)
    if type(value) is dict:
        cur = current if isinstance(current, dict) else {}
        out = {}
        for k, v in value.items():
            kind = type(v)
            if kind is dict or kind is ServerValue:
                v = resolve(v, now_ms, cur.get(k))
            if v is not None:
                out[k] = v  # a leaf is kept as it is: no call per leaf
        return out or None
    return value
