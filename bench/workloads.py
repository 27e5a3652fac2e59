"""The work of the jobs benchmark, one function per figure, run the same way on both systems.

Each takes the task (or a function that submits one) of either side: an Atmosphere ``Task``
and a Celery task both have ``delay(data)`` returning a handle with ``id`` and
``get(timeout=...)``, so the loops below are literally the same code for ours and Celery's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from bench.common import percentile
from bench.completions import Completions

MB = 1024 * 1024
BATCH_TIMEOUT = 900.0


@dataclass(frozen=True)
class Trip:
    """One RPC round trip as the caller saw it (wall-clock ms, to line up with server times)."""

    job_id: str
    sent_ms: float
    got_ms: float
    latency_ms: float  # from the monotonic clock


def rpc_trips(task: Any, jobs: int) -> list[Trip]:
    """``jobs`` sequential round trips (``task.delay(i).get()``)."""
    out = []
    for i in range(jobs):
        sent, t0 = time.time() * 1000, time.perf_counter()
        handle = task.delay(i)
        handle.get(timeout=60)
        latency = (time.perf_counter() - t0) * 1000
        out.append(Trip(str(handle.id), sent, time.time() * 1000, latency))
    return out


def chain_p50(start: Callable[[int], Any], chains: int) -> float:
    """p50 ms of ``chains`` sequential chains of three, ``start(i)`` submitting one."""
    latencies = []
    for i in range(chains):
        t0 = time.perf_counter()
        start(i).get(timeout=60)
        latencies.append((time.perf_counter() - t0) * 1000)
    return percentile(latencies, 0.5)


def submit_then_await(task: Any, jobs: int) -> float:
    """``jobs`` ``task.delay(i)`` in a loop, then every handle awaited; jobs/s from the first
    submission to the last response."""
    t0 = time.perf_counter()
    handles = [task.delay(i) for i in range(jobs)]
    for handle in handles:
        handle.get(timeout=BATCH_TIMEOUT)
    return jobs / (time.perf_counter() - t0)


@dataclass(frozen=True)
class Forgotten:
    """A fire-and-forget batch: how fast it ran and how fast it was submitted."""

    rate: float  # jobs/s from the first submission to the last completion counted
    submit_rate: float  # submissions/s of the submit loop alone


def fire_and_forget(submit: Callable[[str], Any], jobs: int) -> Forgotten:
    """``jobs`` fire-and-forget ``count`` jobs, ``submit(path)`` sending one; each reports its
    completion to a fresh pipe at ``path`` (``bench/completions.py``)."""
    with Completions() as done:
        t0 = time.perf_counter()
        for _ in range(jobs):
            submit(done.path)
        submitted = time.perf_counter() - t0
        end = done.wait(jobs, BATCH_TIMEOUT)
    return Forgotten(rate=jobs / (end - t0), submit_rate=jobs / submitted)


# -- the processes -----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / MB


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds used so far by each group of processes."""
    out = {}
    for name, group in pids.items():
        times = [psutil.Process(pid).cpu_times() for pid in group]
        out[name] = sum(t.user + t.system for t in times)
    return out


def cpu_ms_per_job(
    pids: dict[str, list[int]], jobs: int, work: Callable[[], Any]
) -> tuple[Any, dict[str, float]]:
    """Run ``work``; (its result, CPU milliseconds per job of each group of processes, and
    ``"all"``, their sum)."""
    before = cpu_seconds(pids)
    result = work()
    after = cpu_seconds(pids)
    per_job = {name: (after[name] - before[name]) * 1000 / jobs for name in pids}
    return result, {**per_job, "all": sum(per_job.values())}
