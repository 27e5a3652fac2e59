"""Firebase's order: keys (nameCompare) and index values across types.

Strings compare by UTF-16 code units, as Firebase does: its SDKs and server compare JavaScript
or Java strings, which are UTF-16 (firebase-js-sdk packages/database/src/core/util/util.ts,
``nameCompare`` and ``stringCompare``; "strings are sorted lexicographically", in
https://firebase.google.com/docs/database/rest/retrieve-data#section-rest-ordered-data).
That differs from Python's code point order only between a character above U+FFFF (a surrogate
pair, D800-DFFF) and one in U+E000-U+FFFF.
"""

from __future__ import annotations

import re
from typing import Any

# util.ts: INTEGER_REGEXP_ = /^-?(0*)\d{1,10}$/ (JavaScript's \d is ASCII only), then the
# value must fit in a 32-bit signed integer; such keys sort first, numerically.
_INT_KEY = re.compile(r"-?0*[0-9]{1,10}")
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

MIN_KEY: tuple[Any, ...] = (-1,)  # before every key_order (a start bound without a key)
MAX_KEY: tuple[Any, ...] = (2,)  # after every key_order (an end bound without a key)


def utf16_order(text: str) -> str:
    """A string that sorts, in Python's code point order, as ``text`` does in UTF-16 order.

    Characters above U+FFFF become their surrogate pair (lone surrogates are valid in a Python
    str); any other string is returned as it is, so the common case costs one scan.
    """
    if text.isascii() or max(text) <= "\uffff":
        return text
    units = text.encode("utf-16-be", "surrogatepass")
    return "".join(chr(int.from_bytes(units[i : i + 2], "big")) for i in range(0, len(units), 2))


def key_order(key: str) -> tuple[Any, ...]:
    """nameCompare as a sort key: int32-like keys numerically (shorter first), then strings."""
    c = key[:1]
    if (c == "-" or "0" <= c <= "9") and _INT_KEY.fullmatch(key):
        n = int(key)
        if INT32_MIN <= n <= INT32_MAX:
            return (0, n, len(key), "")
    return (1, 0, 0, utf16_order(key))


def value_order(v: Any) -> tuple[int, Any]:
    """Sort key of an index value: null < false < true < numbers < strings < objects."""
    if v is None:
        return (0, 0)
    if v is False:
        return (1, 0)
    if v is True:
        return (2, 0)
    t = type(v)
    if t is int or t is float:
        return (3, v)
    if t is str:
        return (4, utf16_order(v))
    return (5, 0)
