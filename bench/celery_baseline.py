"""Celery + Redis baseline for the jobs benchmark: the same work as ours, Celery at its defaults.

``redis-server`` (no persistence) as broker and result backend and one ``celery worker
--pool prefork --concurrency 2`` with Celery's default settings (prefetch multiplier 4, early
acks, JSON; ``bench/celery_app.py``). ``measure()`` is one run on a fresh Redis and worker.
Skipped when redis-server or celery is not installed (``available()``).
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.common import percentile
from bench.workloads import (
    chain_p50,
    cpu_ms_per_job,
    fire_and_forget,
    rpc_trips,
    rss_mb,
    submit_then_await,
)

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> bool:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        return False
    return shutil.which("redis-server") is not None


@dataclass(frozen=True)
class Celery:
    """A running Redis and Celery worker: their processes, by role."""

    redis: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role; the maker is this process."""
        pool = [p.pid for p in psutil.Process(self.worker.pid).children()]
        return {
            "redis": [self.redis.pid],
            "worker": [self.worker.pid],
            "pool": pool,
            "maker": [os.getpid()],
        }


def _wait_for_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # redis-server is starting; bounded by the deadline


@contextmanager
def running_celery(workers: int = WORKERS, prefetch: int | None = None) -> Iterator[Celery]:
    """Start redis-server and one Celery worker with ``workers`` processes, at defaults but
    for ``prefetch``, its prefetch multiplier when given (Celery's default: 4)."""
    port = _free_port()
    redis_proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=str(ROOT))
    worker = None
    try:
        _wait_for_redis(url)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.celery_app",
                "worker",
                "--concurrency",
                str(workers),
                "--pool",
                "prefork",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *(["--prefetch-multiplier", str(prefetch)] if prefetch is not None else []),
            ],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.environ["BENCH_REDIS_URL"] = url
        yield Celery(redis_proc, worker)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis_proc.terminate()
        redis_proc.wait(10)


def measure(
    rpc_jobs: int = 500,
    chain_jobs: int = 200,
    batch_jobs: int = 5000,
    warmup: int = 50,
    prefetch: int | None = None,
) -> dict[str, float]:
    """One run of Celery on the jobs benchmark's work (its prefetch multiplier ``prefetch`` when
    given, else its default); its figures by the names of ours (``bench.jobs.Sample``)."""
    from celery import chain

    with running_celery(prefetch=prefetch) as celery:
        # The app reads the broker URL at import: this run's Redis.
        celery_app = importlib.reload(importlib.import_module("bench.celery_app"))
        noop, count = celery_app.noop, celery_app.count
        rpc_trips(noop, warmup)  # the worker and its pool are up and warm
        fire_and_forget(count.delay, warmup)
        pids = celery.pids()
        idle_rss = {
            "rss_redis_mb": rss_mb(pids["redis"][0]),
            "rss_worker_mb": rss_mb(pids["worker"][0]),
            "rss_pool_mb": max(rss_mb(pid) for pid in pids["pool"]),
        }
        trips = rpc_trips(noop, rpc_jobs)
        latencies = [t.latency_ms for t in trips]
        chains = chain_p50(lambda i: chain(noop.s(i), noop.s(), noop.s()).apply_async(), chain_jobs)
        forgotten, forget_cpu = cpu_ms_per_job(
            pids, batch_jobs, lambda: fire_and_forget(count.delay, batch_jobs)
        )
        awaited, awaited_cpu = cpu_ms_per_job(
            pids, batch_jobs, lambda: submit_then_await(noop, batch_jobs)
        )
        return {
            "rpc_p50_ms": percentile(latencies, 0.5),
            "rpc_p99_ms": percentile(latencies, 0.99),
            "chain_p50_ms": chains,
            "forget_rate": forgotten.rate,
            "forget_submit_rate": forgotten.submit_rate,
            "awaited_rate": awaited,
            "forget_cpu_all_ms": forget_cpu["all"],
            "awaited_cpu_all_ms": awaited_cpu["all"],
            **idle_rss,
        }


if __name__ == "__main__":
    # ``python -m bench.celery_baseline [PREFETCH]``: one small run, Celery's prefetch multiplier
    # PREFETCH if given (a check that the baseline's figures do not hinge on it).
    pf = int(sys.argv[1]) if len(sys.argv) > 1 else None
    print(measure(rpc_jobs=100, chain_jobs=20, batch_jobs=1000, warmup=20, prefetch=pf))
