"""Benchmark of the job system end to end (part ``jobs`` of ``nox -s bench``), against Celery.

Real processes on one machine, on the embedded default: the embedded database server
(``atmosphere db``), one ``atmosphere dispatcher --no-station`` and two ``atmosphere cloud
bench.tasks`` processes; the maker is this process, submitting through the public API. Each run
starts a fresh server, a dispatcher on a fresh namespace and two fresh clouds, so runs are
independent samples; halfway the clouds are replaced: first default clouds (exclusive: one job
at a time each), then ``--prefetch 4`` (each holds four more while it runs one).

Per run, issue 9's six figures (``bench/workloads.py`` runs each loop, the same code for both
systems):
- RPC round trip: ``rpc_jobs`` sequential ``noop.delay(i).get()``; p50 and p99 in ms, and the
  mean of each hop from the job records' timestamps. Default clouds.
- Chain of 3 p50: ``chain_jobs`` sequential chains of three no-ops. Default clouds.
- Fire-and-forget: ``batch_jobs`` ``count.submit(path, forget=True)`` in a loop; each job
  reports its completion to a pipe the bench reads (``bench/completions.py``); jobs/s from the
  first submission until the last completion is counted. Default clouds, then ``--prefetch 4``.
- The submit loop alone: submissions/s of that loop (default clouds' batch).
- Submitted then awaited: ``batch_jobs`` ``noop.delay(i)``, then every handle awaited; jobs/s
  from the first submission to the last response. ``--prefetch 4``.
Besides: database writes per job (the server's own ``writes`` counter, from before the work
until the system is quiet again: queue, inboxes, outcomes and this maker's replies empty; all
writes count, heartbeats and lease renewals too); CPU per job of each process (psutil user +
system) over each batch: the server, the dispatcher, the clouds together, the maker; idle RSS
of each process after the warm-up.

Celery at its defaults (``bench/celery_baseline.py``: Redis broker and backend, one worker with
2 prefork processes, prefetch multiplier 4, JSON) does the same work, one of its runs after each
of ours, so the machine's changing load hits both alike; the table prints our figures against
it, as issue 9's ratios Atmosphere / Celery, and says for each whether lower or higher is better.
Run: ``python -m bench jobs`` (``--quick`` for a smoke run), or ``python -m bench.jobs``.
"""

from __future__ import annotations

import math
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

import requests

from bench.common import Row, percentile, print_table
from bench.failover import Child
from bench.workloads import (
    Trip,
    chain_p50,
    cpu_ms_per_job,
    fire_and_forget,
    rpc_trips,
    rss_mb,
    submit_then_await,
)
from devkit.procs import ServerProcess, start_db_server

ROOT = Path(__file__).resolve().parent.parent
ROOT_KEY = "atmosphere"
TASKS = "bench.tasks"
CLOUD_UP = "up: types"
QUIET_TIMEOUT = 60.0
PREFETCH = 4  # issue 9's throughput clouds: as many extra jobs as Celery's default prefetch


@dataclass(frozen=True)
class Plan:
    """How much work one benchmark run does (``QUICK`` for a smoke run)."""

    runs: int = 3
    rpc_jobs: int = 500
    chain_jobs: int = 200
    batch_jobs: int = 5000
    warmup: int = 50
    clouds: int = 2
    celery: bool = True


FULL = Plan()
QUICK = Plan(runs=1, rpc_jobs=100, chain_jobs=20, batch_jobs=500, warmup=20)


@dataclass
class Sample:
    """The figures of one run (``forget``: fire-and-forget; ``p4``: clouds ``--prefetch 4``;
    ``awaited``: submitted then awaited, ``--prefetch 4``)."""

    rpc_p50_ms: float
    rpc_p99_ms: float
    rpc_writes_per_job: float
    chain_p50_ms: float
    forget_rate: float
    forget_submit_rate: float
    forget_writes_per_job: float
    forget_cpu_all_ms: float
    forget_p4_rate: float
    forget_p4_writes_per_job: float
    forget_p4_cpu_all_ms: float
    awaited_rate: float
    awaited_writes_per_job: float
    awaited_cpu_all_ms: float
    # CPU milliseconds per job over the awaited batch, per process (where the time goes).
    cpu_server_ms: float
    cpu_dispatcher_ms: float
    cpu_clouds_ms: float
    cpu_maker_ms: float
    # Idle RSS after the warm-up (the maker is the bench process itself).
    rss_server_mb: float
    rss_dispatcher_mb: float
    rss_cloud_mb: float
    rss_maker_mb: float
    rss_dispatcher_after_mb: float
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


class Fleet:
    """A dispatcher, ``clouds`` cloud processes (``use_clouds`` starts them) and a maker, on one
    fresh namespace."""

    def __init__(self, server: ServerProcess, ns: str, clouds: int) -> None:
        from atmosphere.db.client import FirebaseDatabase
        from atmosphere.settings import Settings
        from bench import tasks
        from devkit.procs import DispatcherProcess

        self.server = server
        self.base_url = server.base_url
        self.url = server.db_url(ns)
        self.size = clouds
        self.clouds: list[Child] = []
        self.dispatcher = DispatcherProcess(self.url, ROOT_KEY, env={})
        self.database = FirebaseDatabase(self.url)
        self.app = tasks.app
        self.app.configure(
            settings=Settings.from_url(self.url, root=ROOT_KEY), database=self.database
        )
        self.noop = tasks.noop
        self.count = tasks.count

    def use_clouds(self, prefetch: int) -> None:
        """Stop the clouds running (they deregister) and start ``size`` new ones holding
        ``prefetch`` extra jobs each (0: the default, one job at a time)."""
        self.stop_clouds()
        cmd = [sys.executable, "-m", "atmosphere", "cloud", TASKS, "--db-url", self.url]
        cmd += ["--root", ROOT_KEY, "--prefetch", str(prefetch)]
        # This checkout first (bench.tasks), then whatever the caller has (bench.trace: its hooks).
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        }
        self.clouds = [
            Child([*cmd, "--name", f"bench-{i}"], CLOUD_UP, env) for i in range(self.size)
        ]
        for cloud in self.clouds:
            cloud.wait_ready()

    def stop_clouds(self) -> None:
        """Stop the clouds, all at once (each drains and deregisters)."""
        for cloud in self.clouds:
            cloud.proc.terminate()
        for cloud in self.clouds:
            cloud.stop()
        self.clouds = []

    def forget(self, path: str) -> None:
        """Submit one fire-and-forget ``count`` job reporting to ``path``."""
        self.count.submit(path, forget=True)

    def chain_of_3(self, i: int) -> Any:
        """Submit one chain of three no-ops; its handle."""
        from atmosphere import chain

        return chain(self.noop.s(i), self.noop, self.noop).submit()

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
            self.stop_clouds()
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


@contextmanager
def fleet_on(server: ServerProcess, name: str, clouds: int) -> Iterator[Fleet]:
    """A fresh fleet on a fresh namespace, stopped on the way out."""
    fleet = Fleet(server, f"bench-jobs-{name}-{int(time.time())}", clouds)
    try:
        yield fleet
    finally:
        fleet.close()


def warm_clouds(fleet: Fleet, plan: Plan, prefetch: int) -> None:
    """Fresh clouds holding ``prefetch`` extra jobs, warmed up (round trips, a fire-and-forget
    and an awaited batch); the system quiet again."""
    fleet.use_clouds(prefetch)
    rpc_trips(fleet.noop, plan.warmup)
    fire_and_forget(fleet.forget, plan.warmup * 4)
    submit_then_await(fleet.noop, plan.warmup * 4)
    fleet.wait_quiet()


# -- the measurements --------------------------------------------------------------------------


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
    cloud's clock, the ends the caller's; one machine, so one clock, but whole milliseconds
    taken two ways: the server truncates (``int``), the cloud rounds (``wiretime.to_ms``). Mixed
    as they are, sub-millisecond hops came out negative on average (about -0.3 ms), so each
    mark is brought to a truncated millisecond first: the caller's times are truncated, and a
    rounded time is half a millisecond later than a truncated one on average (means only).
    """
    sums = dict.fromkeys((name for name, _, _ in HOPS), 0.0)
    counted = 0
    for trip in trips:
        record = records.get(trip.job_id)
        if not isinstance(record, dict) or not all(record.get(f) for _, f, _ in HOPS[:4]):
            continue
        submitted, assigned, started, finished = (float(record[f]) for _, f, _ in HOPS[:4])
        marks = [
            math.floor(trip.sent_ms),
            submitted,
            assigned,
            started - 0.5,  # rounded, as the others are truncated
            finished,
            math.floor(trip.got_ms),
        ]
        for (name, _, _), start, end in zip(HOPS, marks[:-1], marks[1:], strict=True):
            sums[name] += end - start
        counted += 1
    return {name: total / counted if counted else float("nan") for name, total in sums.items()}


def measured(
    fleet: Fleet, jobs: int, work: Callable[[], Any]
) -> tuple[Any, float, dict[str, float]]:
    """Run ``work`` (``jobs`` jobs); (its result, server writes per job until the system is quiet
    again, CPU ms per job of each process over the same span)."""
    before = server_writes(fleet.base_url)

    def until_quiet() -> Any:
        result = work()
        fleet.wait_quiet()
        return result

    result, cpu = cpu_ms_per_job(fleet.pids, jobs, until_quiet)
    return result, (server_writes(fleet.base_url) - before) / jobs, cpu


def one_run(plan: Plan, index: int) -> Sample:
    """A fresh server and two fresh fleets on it (default clouds, then ``--prefetch 4``); every
    figure once."""
    with embedded_server() as server:
        return one_run_on(server, plan, index)


def one_run_on(server: ServerProcess, plan: Plan, index: int) -> Sample:
    """Every figure once, on ``server``."""
    n = plan.batch_jobs
    with fleet_on(server, str(index), plan.clouds) as fleet:
        warm_clouds(fleet, plan, prefetch=0)
        rss = {
            "rss_server_mb": rss_mb(server.pid),
            "rss_dispatcher_mb": rss_mb(fleet.dispatcher.proc.pid),
            "rss_cloud_mb": max(rss_mb(pid) for pid in fleet.cloud_pids),
            "rss_maker_mb": rss_mb(os.getpid()),
        }
        trips, rpc_writes, _ = measured(
            fleet, plan.rpc_jobs, lambda: rpc_trips(fleet.noop, plan.rpc_jobs)
        )
        hops = hop_means(trips, fleet.database.get(fleet.app.paths.jobs()) or {})
        latencies = [t.latency_ms for t in trips]
        chains = chain_p50(fleet.chain_of_3, plan.chain_jobs)
        fleet.wait_quiet()
        forgotten, forget_writes, forget_cpu = measured(
            fleet, n, lambda: fire_and_forget(fleet.forget, n)
        )
        warm_clouds(fleet, plan, prefetch=PREFETCH)
        forgotten_p4, forget_p4_writes, forget_p4_cpu = measured(
            fleet, n, lambda: fire_and_forget(fleet.forget, n)
        )
        awaited, awaited_writes, cpu = measured(fleet, n, lambda: submit_then_await(fleet.noop, n))
        dispatcher_after = rss_mb(fleet.dispatcher.proc.pid)
    return Sample(
        rpc_p50_ms=percentile(latencies, 0.5),
        rpc_p99_ms=percentile(latencies, 0.99),
        rpc_writes_per_job=rpc_writes,
        chain_p50_ms=chains,
        forget_rate=forgotten.rate,
        forget_submit_rate=forgotten.submit_rate,
        forget_writes_per_job=forget_writes,
        forget_cpu_all_ms=forget_cpu["all"],
        forget_p4_rate=forgotten_p4.rate,
        forget_p4_writes_per_job=forget_p4_writes,
        forget_p4_cpu_all_ms=forget_p4_cpu["all"],
        awaited_rate=awaited,
        awaited_writes_per_job=awaited_writes,
        awaited_cpu_all_ms=cpu["all"],
        cpu_server_ms=cpu["server"],
        cpu_dispatcher_ms=cpu["dispatcher"],
        cpu_clouds_ms=cpu["clouds"],
        cpu_maker_ms=cpu["maker"],
        **rss,
        rss_dispatcher_after_mb=dispatcher_after,
        **hops,
    )  # fmt: skip


def measure(
    plan: Plan = FULL, celery_run: Callable[[], dict[str, float]] | None = None
) -> tuple[Sample, list[Sample], dict[str, float] | None]:
    """``plan.runs`` independent runs, each followed by one of Celery's when
    ``celery_run`` is given (alternating, so a change in the machine's load hits both alike);
    (our medians, every run's figures, Celery's medians)."""
    samples: list[Sample] = []
    theirs: list[dict[str, float]] = []
    for i in range(plan.runs):
        sample = one_run(plan, i)
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
            chain_jobs=plan.chain_jobs,
            batch_jobs=plan.batch_jobs,
            warmup=plan.warmup,
        )

    return one


LOWER, HIGHER = "lower", "higher"  # which way is better, for the table's `better` column


def rows_of(ours: Sample, celery: dict[str, float] | None, plan: Plan) -> list[Row]:
    """The table rows: our medians against Celery's at its defaults (issue 9's ratios, ours /
    Celery's: for a time lower is better, for a rate higher)."""
    c = celery or {}
    cel = "celery" if celery else ""
    n = f"{plan.batch_jobs:,}"

    def vs(figure: str, value: float, unit: str, key: str, better: str, target: str = "") -> Row:
        return Row("jobs", figure, value, unit, c.get(key), cel, target, better)

    return [
        vs(f"RPC round trip p50 (median of {plan.runs})", ours.rpc_p50_ms, "ms", "rpc_p50_ms",
           LOWER, "<= 0.6x"),
        vs("RPC round trip p99", ours.rpc_p99_ms, "ms", "rpc_p99_ms", LOWER),
        *(Row("jobs", f"  RPC hop (mean): {what}", getattr(ours, name), "ms")
          for name, _, what in HOPS),
        vs("chain of 3 p50", ours.chain_p50_ms, "ms", "chain_p50_ms", LOWER, "<= 0.6x"),
        vs(f"{n} fire-and-forget, counted by the task, default clouds", ours.forget_rate,
           "jobs/s", "forget_rate", HIGHER, ">= 1.5x"),
        vs(f"{n} fire-and-forget, counted by the task, clouds --prefetch {PREFETCH}",
           ours.forget_p4_rate, "jobs/s", "forget_rate", HIGHER, ">= 3x"),
        vs(f"{n} submitted then all awaited, clouds --prefetch {PREFETCH}", ours.awaited_rate,
           "jobs/s", "awaited_rate", HIGHER, ">= 3x"),
        vs("the submit loop alone (submit(forget=True) / delay)", ours.forget_submit_rate,
           "jobs/s", "forget_submit_rate", HIGHER, ">= 2x"),
        Row("jobs", "DB writes per job, sequential RPC", ours.rpc_writes_per_job, "writes"),
        Row("jobs", "DB writes per job, fire-and-forget, default clouds",
            ours.forget_writes_per_job, "writes"),
        Row("jobs", f"DB writes per job, fire-and-forget, --prefetch {PREFETCH}",
            ours.forget_p4_writes_per_job, "writes", target="<= 1"),
        Row("jobs", f"DB writes per job, awaited, --prefetch {PREFETCH}",
            ours.awaited_writes_per_job, "writes", target="<= 1"),
        vs("CPU per job, all processes: fire-and-forget, default clouds", ours.forget_cpu_all_ms,
           "ms", "forget_cpu_all_ms", LOWER),
        vs(f"CPU per job, all processes: fire-and-forget, --prefetch {PREFETCH}",
           ours.forget_p4_cpu_all_ms, "ms", "forget_cpu_all_ms", LOWER),
        vs(f"CPU per job, all processes: awaited, --prefetch {PREFETCH}",
           ours.awaited_cpu_all_ms, "ms", "awaited_cpu_all_ms", LOWER, "<= 0.5 ms"),
        Row("jobs", "  of which the db server", ours.cpu_server_ms, "ms", better=LOWER),
        Row("jobs", "  of which the dispatcher", ours.cpu_dispatcher_ms, "ms", better=LOWER),
        Row("jobs", "  of which the clouds, summed", ours.cpu_clouds_ms, "ms", better=LOWER),
        Row("jobs", "  of which the maker", ours.cpu_maker_ms, "ms", better=LOWER),
        Row("jobs", "RSS idle: db server", ours.rss_server_mb, "MiB", c.get("rss_redis_mb"),
            "redis-server" if celery else "", better=LOWER),
        Row("jobs", "RSS idle: dispatcher", ours.rss_dispatcher_mb, "MiB",
            c.get("rss_worker_mb"), "celery main" if celery else "", better=LOWER),
        Row("jobs", "RSS idle: a cloud", ours.rss_cloud_mb, "MiB", c.get("rss_pool_mb"),
            "celery pool" if celery else "", better=LOWER),
        Row("jobs", "RSS idle: the maker (the bench process)", ours.rss_maker_mb, "MiB"),
        Row("jobs", "RSS of the dispatcher, after the run", ours.rss_dispatcher_after_mb, "MiB"),
    ]  # fmt: skip


def run(plan: Plan = FULL) -> list[Row]:
    """Measure Atmosphere and Celery on the same work, alternating; the rows to print."""
    ours, _, celery = measure(plan, celery_runner(plan))
    return rows_of(ours, celery, plan)


if __name__ == "__main__":
    print_table(run(QUICK if "--quick" in sys.argv else FULL))
