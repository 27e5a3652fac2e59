"""Firebase's 20-character chronological push ids (NextPushId.ts), monotonic under a lock."""

from __future__ import annotations

import secrets
import threading
import time

PUSH_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


class PushIdGenerator:
    """Makes push ids that are unique and strictly increasing in byte order within one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = [0] * 12

    def next(self, now_ms: int | None = None) -> str:
        """Return the next id (8 chars of milliseconds, then 12 chars of random/incremented bits)."""
        with self._lock:
            ms = int(time.time() * 1000) if now_ms is None else now_ms
            if ms <= self._last_ms:
                # Same (or an earlier: clock stepped back) millisecond: keep the previous time
                # part and add one to the random part, so ids stay strictly increasing.
                ms = self._last_ms
                rnd = self._last_random
                i = 11
                while i >= 0 and rnd[i] == 63:
                    rnd[i] = 0
                    i -= 1
                if i < 0:  # 72 bits exhausted within one millisecond: borrow the next one
                    ms += 1
                    rnd = [secrets.randbelow(64) for _ in range(12)]
                else:
                    rnd[i] += 1
            else:
                rnd = [secrets.randbelow(64) for _ in range(12)]
            self._last_ms = ms
            self._last_random = rnd
            time_chars = []
            t = ms
            for _ in range(8):
                time_chars.append(PUSH_CHARS[t % 64])
                t //= 64
            return "".join(reversed(time_chars)) + "".join(PUSH_CHARS[r] for r in rnd)
