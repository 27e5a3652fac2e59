"""``python -m bench.assign_round``: the dispatcher's assignment round time against queue depth.

Builds the dispatcher's live view (``LiveState``) with N queued jobs of three types and eight
idle clouds of four slots, then times rounds of what ``Dispatcher._assign`` does: plan the
round and apply each assignment to the view (queue entry out, inbox entry in). Between rounds
the inboxes are emptied, as completions would. Prints the median round per depth, in ms.
"""

from __future__ import annotations

import statistics
import sys
import time

from atmosphere.rtdb.pushid import PushIdGenerator
from atmosphere.scheduler import assigning
from atmosphere.scheduler.state import LiveState

TYPES = ("a", "b", "c")
CLOUDS = 8
SLOTS = 4
ROUNDS = 30


def build(depth: int) -> LiveState:
    """A live view with ``depth`` queued jobs spread over TYPES and idle clouds for them."""
    state = LiveState()
    ids = PushIdGenerator()
    queue: dict[str, dict[str, object]] = {t: {} for t in TYPES}
    for n in range(depth):
        job_type = TYPES[n % len(TYPES)]
        queue[job_type][ids.next()] = {"type": job_type, "name": "j", "timeout": 60}
    clouds = {
        f"c{i}": {"name": f"c{i}", "types": dict.fromkeys(TYPES, True), "slots": SLOTS}
        for i in range(CLOUDS)
    }
    state.apply("put", "/", {"queue": queue, "clouds": clouds})
    return state


def one_round(state: LiveState) -> float:
    """Plan and apply one round; return its seconds (emptying the inboxes is not counted)."""
    start = time.perf_counter()
    held = assigning.held_jobs(state)
    loads = assigning.cloud_loads(state, {}, 0.0, 60.0)
    placed = 0
    for spec, cloud_id in assigning.plan(state.queue, loads, held):
        state.apply("put", f"queue/{spec.type}/{spec.id}", None)
        state.apply("put", f"inbox/{cloud_id}/{spec.id}", spec.to_json())
        placed += 1
    elapsed = time.perf_counter() - start
    assert placed == CLOUDS * SLOTS, placed
    state.apply("put", "inbox", None)
    return elapsed


def main(depths: list[int]) -> None:
    for depth in depths:
        state = build(depth)
        samples = [one_round(state) for _ in range(ROUNDS)]
        print(
            f"{depth:>8,} queued: round median {statistics.median(samples) * 1000:8.3f} ms, "
            f"max {max(samples) * 1000:8.3f} ms ({CLOUDS * SLOTS} assignments per round)"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000])
