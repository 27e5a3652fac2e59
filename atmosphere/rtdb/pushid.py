"""Firebase's 20-character chronological push ids (NextPushId.ts), monotonic under a lock."""

from __future__ import annotations

import os
import threading
import time

PUSH_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


class PushIdGenerator:
    """Makes push ids that are unique and strictly increasing in byte order within one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random: bytes | bytearray = bytes(12)  # 12 base-64 digits

    def next(self, now_ms: int | None = None) -> str:
        """Return the next id (8 chars of milliseconds, then 12 chars of random/incremented bits)."""
        with self._lock:
            ms = int(time.time() * 1000) if now_ms is None else now_ms
            rnd: bytes | bytearray
            if ms <= self._last_ms:
                # Same (or an earlier: clock stepped back) millisecond: keep the previous time
                # part and add one to the random part, so ids stay strictly increasing.
                ms = self._last_ms
                rnd = bytearray(self._last_random)
                i = 11
                while i >= 0 and rnd[i] == 63:
                    rnd[i] = 0
                    i -= 1
                if i < 0:  # 72 bits exhausted within one millisecond: borrow the next one
                    ms += 1
                    rnd = _random_digits()
                else:
                    rnd[i] += 1
            else:
                rnd = _random_digits()
            self._last_ms = ms
            self._last_random = rnd
            time_digits = bytes([(ms >> shift) & 63 for shift in _TIME_SHIFTS])
            return (time_digits + rnd).translate(_CHARS).decode()


_TIME_SHIFTS = range(42, -1, -6)  # 8 base-64 digits of milliseconds, most significant first
_DIGITS = bytes(b & 63 for b in range(256))  # a random byte -> a random base-64 digit
_CHARS = PUSH_CHARS.encode().ljust(256, b"?")  # a base-64 digit -> its character


def _random_digits() -> bytes:
    """12 random base-64 digits (72 bits) from one read of the OS's randomness.

    Twelve ``secrets.randbelow(64)`` calls made twelve reads (``getrandom``) per id, tens of
    microseconds on the submit path: a maker makes one id per job.
    """
    return os.urandom(12).translate(_DIGITS)
