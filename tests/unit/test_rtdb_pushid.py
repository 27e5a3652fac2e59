"""Unit tests of push ids (atmosphere.rtdb.pushid)."""

from __future__ import annotations

import re
import threading

from atmosphere.rtdb.pushid import PUSH_CHARS, PushIdGenerator


def test_alphabet_is_in_ascii_order() -> None:
    assert list(PUSH_CHARS) == sorted(PUSH_CHARS)


def test_ids_are_20_chars_and_increase_within_one_millisecond() -> None:
    gen = PushIdGenerator()
    ids = [gen.next(now_ms=1_700_000_000_000) for _ in range(1000)]
    assert all(re.fullmatch(r"[-0-9A-Za-z_]{20}", i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert len({i[:8] for i in ids}) == 1


def test_time_prefix_orders_by_time_and_survives_clock_steps_back() -> None:
    gen = PushIdGenerator()
    a = gen.next(now_ms=1000)
    b = gen.next(now_ms=2000)
    c = gen.next(now_ms=1500)  # the clock stepped back
    assert a < b < c


def test_random_part_carries() -> None:
    gen = PushIdGenerator()
    first = gen.next(now_ms=5)
    gen._last_random = bytes([63] * 12)  # the next id within this millisecond must carry over
    carried = gen.next(now_ms=5)
    assert carried > first
    assert gen.next(now_ms=5) > carried


def test_threads_get_unique_increasing_ids() -> None:
    gen = PushIdGenerator()
    out: list[list[str]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        out[i] = [gen.next() for _ in range(2000)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in out for i in chunk]
    assert len(set(every)) == len(every)
    for chunk in out:
        assert chunk == sorted(chunk)


def test_the_random_part_differs_between_milliseconds() -> None:
    gen = PushIdGenerator()
    ids = [gen.next(now_ms=ms) for ms in range(1, 201)]
    assert len({i[8:] for i in ids}) == 200  # 72 random bits each: a repeat would be a bug
    assert all(set(i[8:]) <= set(PUSH_CHARS) for i in ids)
    # every one of the 64 digits turns up among 2,400 random ones
    assert {c for i in ids for c in i[8:]} == set(PUSH_CHARS)
