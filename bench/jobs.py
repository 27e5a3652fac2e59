"""Benchmark of the job system end to end (part ``jobs`` of ``nox -s bench``), against Celery.

Real processes on one machine, on the embedded default: the embedded database server
(``atmosphere db``), one ``atmosphere dispatcher --no-station`` and two ``atmosphere cloud
bench.tasks`` processes (exclusive: one job at a time each), all with default settings; the
maker is this process, submitting through the public API (``noop.delay(i)``). Each run gets a
fresh namespace and fresh dispatcher and clouds, so runs are independent samples.

Per run:
- RPC round trip: ``rpc_jobs`` sequential ``noop.delay(i).get()``; p50 and p99 in ms.
- Throughput: ``throughput_jobs`` ``noop.delay(i)`` submitted, then every handle awaited; jobs/s
  from the first submission to the last response.
- Database writes per job: committed write requests counted by the server itself (the
  ``writes`` counter of ``GET /.settings/stats.json``), from before the first submission until
  the system is quiet again (queue, inboxes, outcomes and this maker's replies all empty, so the
  dispatcher's settling and the maker's batched reply deletes are included). Everything is
  counted, heartbeats and lease renewals too (a few per second in all).
- RSS (psutil) of each cloud, idle after a warm-up, and of the dispatcher, idle and after the run.
- CPU per job (psutil user + system time over the throughput batch / jobs) of each process:
  the server, the dispatcher, the clouds together and the maker. It says where the time goes.

Celery with a Redis broker and result backend, one worker with 2 prefork processes, does the same
work in the same run (``bench/celery_baseline.py``), one of its runs after each of ours, so the
machine's changing load hits both alike; the table prints our figures against it.
Run: ``python -m bench jobs`` (``--quick`` for a smoke run), or ``python -m bench.jobs``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.common import Row, percentile, print_table
from tests.support import ServerProcess, start_db_server

ROOT = Path(__file__).resolve().parent.parent
ROOT_KEY = "atmosphere"
TASKS = "bench.tasks"
CLOUD_UP = "up: types"
QUIET_TIMEOUT = 60.0
MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """How much work one benchmark run does (``QUICK`` for a smoke run)."""

    runs: int = 3
    rpc_jobs: int = 500
    chain_jobs: int = 200
    throughput_jobs: int = 5000
    warmup: int = 50
    clouds: int = 2
    celery: bool = True


FULL = Plan()
QUICK = Plan(runs=1, rpc_jobs=100, chain_jobs=20, throughput_jobs=500, warmup=20)


@dataclass
class Sample:
    """The figures of one run."""

    rpc_p50_ms: float
    rpc_p99_ms: float
    rpc_writes_per_job: float
    chain_p50_ms: float
    throughput: float
    submit_seconds: float
    throughput_writes_per_job: float
    cloud_rss_mb: float
    dispatcher_rss_idle_mb: float
    dispatcher_rss_after_mb: float
    # CPU milliseconds per job over the throughput batch, per process (where the time goes).
    cpu_server_ms: float
    cpu_dispatcher_ms: float
    cpu_clouds_ms: float
    cpu_maker_ms: float
    # Mean ms of each hop of the RPC round trip (HOPS).
    hop_submit_ms: float
    hop_dispatch_ms: float
    hop_pickup_ms: float
    hop_complete_ms: float
    hop_reply_ms: float


def median_sample(samples: list[Sample]) -> Sample:
    """Each figure's median over the runs."""
    medians = {
        f.name: statistics.median(getattr(s, f.name) for s in samples) for f in fields(Sample)
    }
    return Sample(**medians)


# -- the processes -----------------------------------------------------------------------------


def server_writes(base_url: str) -> int:
    """The server's count of committed write requests (admin-only stats endpoint)."""
    r = requests.get(
        f"{base_url}/.settings/stats.json", headers={"Authorization": "Bearer owner"}, timeout=10
    )
    r.raise_for_status()
    return int(r.json()["writes"])


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


class Fleet:
    """A dispatcher, ``clouds`` cloud processes and a maker on one fresh namespace."""

    def __init__(self, server: ServerProcess, ns: str, clouds: int) -> None:
        from atmosphere.db.client import FirebaseDatabase
        from atmosphere.settings import Settings
        from bench import tasks
        from bench.failover import Child
        from tests.integration.dispatcher_support import DispatcherProcess

        self.server = server
        self.base_url = server.base_url
        self.url = server.db_url(ns)
        self.dispatcher = DispatcherProcess(self.url, ROOT_KEY, env={})
        cmd = [sys.executable, "-m", "atmosphere", "cloud", TASKS, "--db-url", self.url]
        # --prefetch 1 matches the Celery side: worker_prefetch_multiplier=1 with early acks
        # lets each Celery worker process hold one more message while it runs one.
        cmd += ["--root", ROOT_KEY, "--prefetch", "1"]
        self.clouds = [
            Child([*cmd, "--name", f"bench-{i}"], CLOUD_UP, {"PYTHONPATH": str(ROOT)})
            for i in range(clouds)
        ]
        for cloud in self.clouds:
            cloud.wait_ready()
        self.database = FirebaseDatabase(self.url)
        self.app = tasks.app
        self.app.configure(
            settings=Settings.from_url(self.url, root=ROOT_KEY), database=self.database
        )
        self.noop = tasks.noop

    @property
    def cloud_pids(self) -> list[int]:
        """The cloud processes' ids."""
        return [c.proc.pid for c in self.clouds]

    @property
    def pids(self) -> dict[str, list[int]]:
        """Process ids by role (the maker is this process)."""
        return {
            "server": [self.server.pid],
            "dispatcher": [self.dispatcher.proc.pid],
            "clouds": self.cloud_pids,
            "maker": [os.getpid()],
        }

    def quiet(self) -> bool:
        """True when no job is queued, assigned or unsettled and our replies are all deleted."""
        paths, db = self.app.paths, self.database
        queued = db.get(paths.queue()) or {}
        assigned = db.get(paths.inbox()) or {}
        if any(queued.values()) or any(assigned.values()) or db.get(paths.outcomes(), shallow=True):
            return False
        return not db.get(paths.replies(self.app.maker.id), shallow=True)

    def wait_quiet(self) -> None:
        """Wait (bounded) until the system is quiet after a batch of jobs."""
        deadline = time.monotonic() + QUIET_TIMEOUT
        while not self.quiet():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the system did not settle within {QUIET_TIMEOUT}s")
            time.sleep(0.05)  # polling real processes' state in the database, with a deadline

    def close(self) -> None:
        """Stop the maker, the clouds and the dispatcher."""
        try:
            self.app.close()
            self.database.close()
        finally:
            for cloud in self.clouds:
                cloud.stop()
            self.dispatcher.stop()


@contextmanager
def embedded_server() -> Iterator[ServerProcess]:
    """The embedded database server as a real process on a free port."""
    with tempfile.TemporaryDirectory(prefix="atmosphere-bench-jobs-") as data_dir:
        server = start_db_server(data_dir)
        try:
            yield server
        finally:
            server.stop()


# -- the measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trip:
    """One RPC round trip as the caller saw it (wall-clock ms, to line up with server times)."""

    job_id: str
    sent_ms: float
    got_ms: float
    latency_ms: float  # from the monotonic clock


def rpc_trips(noop: Any, jobs: int) -> list[Trip]:
    """``jobs`` sequential round trips (``noop.delay(i).get()``)."""
    out = []
    for i in range(jobs):
        sent, t0 = time.time() * 1000, time.perf_counter()
        handle = noop.delay(i)
        handle.get(timeout=60)
        latency = (time.perf_counter() - t0) * 1000
        out.append(Trip(handle.id, sent, time.time() * 1000, latency))
    return out


HOPS = (
    ("hop_submit_ms", "submitted", "maker: submit until its write is committed"),
    ("hop_dispatch_ms", "assigned", "dispatcher: sees the job, assignment committed"),
    ("hop_pickup_ms", "started", "cloud: sees the assignment, handler starts"),
    ("hop_complete_ms", "finished", "cloud: handler + completion committed"),
    ("hop_reply_ms", "", "maker: sees the reply, get() returns"),
)


def hop_means(trips: list[Trip], records: dict[str, Any]) -> dict[str, float]:
    """Mean ms of each hop of the round trip, from the job records' timestamps.

    ``submitted``, ``assigned`` and ``finished`` are server commit times, ``started`` the
    cloud's clock, the ends the caller's; one machine, so one clock (ms resolution: means).
    """
    sums = dict.fromkeys((name for name, _, _ in HOPS), 0.0)
    counted = 0
    for trip in trips:
        record = records.get(trip.job_id)
        if not isinstance(record, dict) or not all(record.get(f) for _, f, _ in HOPS[:4]):
            continue
        marks = [trip.sent_ms, *(float(record[f]) for _, f, _ in HOPS[:4]), trip.got_ms]
        for (name, _, _), start, end in zip(HOPS, marks[:-1], marks[1:], strict=True):
            sums[name] += end - start
        counted += 1
    return {name: total / counted if counted else float("nan") for name, total in sums.items()}


def chain_p50(noop: Any, chains: int) -> float:
    """p50 ms of ``chains`` sequential chains of three no-ops, each submitted then awaited."""
    from atmosphere import chain

    latencies = []
    for i in range(chains):
        t0 = time.perf_counter()
        chain(noop.s(i), noop, noop).submit().get(timeout=60)
        latencies.append((time.perf_counter() - t0) * 1000)
    return percentile(latencies, 0.5)


def throughput(noop: Any, jobs: int) -> tuple[float, float]:
    """(jobs/s from first submission to last response, seconds spent submitting)."""
    t0 = time.perf_counter()
    handles = [noop.delay(i) for i in range(jobs)]
    submitted = time.perf_counter() - t0
    for handle in handles:
        handle.get(timeout=900)
    return jobs / (time.perf_counter() - t0), submitted


def counting_writes(fleet: Fleet, work: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``work``; (its result, server writes until the system is quiet again)."""
    before = server_writes(fleet.base_url)
    result = work()
    fleet.wait_quiet()
    return result, server_writes(fleet.base_url) - before


def one_run(server: ServerProcess, plan: Plan, index: int) -> Sample:
    """A fresh fleet on a fresh namespace; every figure once."""
    fleet = Fleet(server, f"bench-jobs-{index}-{int(time.time())}", plan.clouds)
    try:
        noop = fleet.noop
        rpc_trips(noop, plan.warmup)
        throughput(noop, plan.warmup * 4)
        fleet.wait_quiet()
        cloud_rss = max(rss_mb(pid) for pid in fleet.cloud_pids)
        dispatcher_idle = rss_mb(fleet.dispatcher.proc.pid)
        trips, rpc_writes = counting_writes(fleet, lambda: rpc_trips(noop, plan.rpc_jobs))
        hops = hop_means(trips, fleet.database.get(fleet.app.paths.jobs()) or {})
        latencies = [t.latency_ms for t in trips]
        chains_p50 = chain_p50(noop, plan.chain_jobs)
        fleet.wait_quiet()
        cpu_before = cpu_seconds(fleet.pids)
        (rate, submit_s), tp_writes = counting_writes(
            fleet, lambda: throughput(noop, plan.throughput_jobs)
        )
        cpu_after = cpu_seconds(fleet.pids)
        cpu_ms = {
            k: (cpu_after[k] - cpu_before[k]) * 1000 / plan.throughput_jobs for k in cpu_after
        }
        return Sample(
            rpc_p50_ms=percentile(latencies, 0.5),
            rpc_p99_ms=percentile(latencies, 0.99),
            rpc_writes_per_job=rpc_writes / plan.rpc_jobs,
            chain_p50_ms=chains_p50,
            throughput=rate,
            submit_seconds=submit_s,
            throughput_writes_per_job=tp_writes / plan.throughput_jobs,
            cloud_rss_mb=cloud_rss,
            dispatcher_rss_idle_mb=dispatcher_idle,
            dispatcher_rss_after_mb=rss_mb(fleet.dispatcher.proc.pid),
            cpu_server_ms=cpu_ms["server"],
            cpu_dispatcher_ms=cpu_ms["dispatcher"],
            cpu_clouds_ms=cpu_ms["clouds"],
            cpu_maker_ms=cpu_ms["maker"],
            **hops,
        )
    finally:
        fleet.close()


def measure(
    plan: Plan = FULL, celery_run: Callable[[], dict[str, float]] | None = None
) -> tuple[Sample, list[Sample], dict[str, float] | None]:
    """``plan.runs`` independent runs on one server, each followed by one of Celery's when
    ``celery_run`` is given (alternating, so a change in the machine's load hits both alike);
    (our medians, every run's figures, Celery's medians)."""
    samples: list[Sample] = []
    theirs: list[dict[str, float]] = []
    with embedded_server() as server:
        for i in range(plan.runs):
            sample = one_run(server, plan, i)
            print(f"jobs run {i + 1}/{plan.runs}: {asdict(sample)}", file=sys.stderr)
            samples.append(sample)
            if celery_run is not None:
                theirs.append(celery_run())
                print(f"jobs: celery run {i + 1}/{plan.runs}: {theirs[-1]}", file=sys.stderr)
    celery = {k: statistics.median(r[k] for r in theirs) for k in theirs[0]} if theirs else None
    return median_sample(samples), samples, celery


def celery_runner(plan: Plan) -> Callable[[], dict[str, float]] | None:
    """One Celery run on the same work (a fresh Redis and worker each time), or None when
    Redis or Celery is missing."""
    from bench import celery_baseline

    if not plan.celery or not celery_baseline.available():
        print("jobs: Celery baseline skipped (redis-server or celery missing)", file=sys.stderr)
        return None

    def one() -> dict[str, float]:
        return celery_baseline.measure(
            rpc_jobs=plan.rpc_jobs,
            throughput_jobs=plan.throughput_jobs,
            runs=1,
            chain_jobs=plan.chain_jobs,
        )

    return one


def rows_of(ours: Sample, celery: dict[str, float] | None, runs: int) -> list[Row]:
    """The table rows: our medians, Celery's alongside where it does the same thing."""
    c = celery or {}
    label = "celery+redis" if celery else ""
    n = f"median of {runs}"
    return [
        Row("jobs", f"RPC round trip p50 ({n})", ours.rpc_p50_ms, "ms",
            c.get("rpc_p50_ms"), label, "<= 0.6x celery"),
        Row("jobs", "RPC round trip p99", ours.rpc_p99_ms, "ms", c.get("rpc_p99_ms"), label),
        Row("jobs", "chain of 3 p50", ours.chain_p50_ms, "ms", c.get("chain_p50_ms"), label,
            "<= 0.6x celery"),
        *(Row("jobs", f"  RPC hop (mean): {what}", getattr(ours, name), "ms")
          for name, _, what in HOPS),
        Row("jobs", "throughput (submit all, await all)", ours.throughput, "jobs/s",
            c.get("throughput"), label, ">= 3x celery"),
        Row("jobs", "  of which submitting (the submit loop alone)", ours.submit_seconds, "s",
            c.get("submit_seconds"), label, "<= 0.5x celery"),
        Row("jobs", "DB writes per job, throughput batch", ours.throughput_writes_per_job,
            "writes", target="<= 1"),
        Row("jobs", "DB writes per job, sequential RPC", ours.rpc_writes_per_job, "writes"),
        Row("jobs", "RSS of an idle cloud", ours.cloud_rss_mb, "MiB"),
        Row("jobs", "RSS of the dispatcher, idle", ours.dispatcher_rss_idle_mb, "MiB"),
        Row("jobs", "RSS of the dispatcher, after the run", ours.dispatcher_rss_after_mb, "MiB"),
        Row("jobs", "CPU per job (throughput): db server", ours.cpu_server_ms, "ms"),
        Row("jobs", "CPU per job (throughput): dispatcher", ours.cpu_dispatcher_ms, "ms"),
        Row("jobs", "CPU per job (throughput): clouds, summed", ours.cpu_clouds_ms, "ms"),
        Row("jobs", "CPU per job (throughput): maker", ours.cpu_maker_ms, "ms"),
    ]  # fmt: skip


def run(plan: Plan = FULL) -> list[Row]:
    """Measure Atmosphere and Celery on the same work, alternating; the rows to print."""
    ours, _, celery = measure(plan, celery_runner(plan))
    return rows_of(ours, celery, plan.runs)


if __name__ == "__main__":
    print_table(run(QUICK if "--quick" in sys.argv else FULL))
