"""Celery + Redis baseline for the jobs benchmark (same work: no-op jobs, 2 worker processes).

Skipped (returns None) when redis-server or celery is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


@contextmanager
def running_celery(workers: int = 2) -> Iterator[str]:
    """Start redis-server and one Celery worker with ``workers`` processes; yield the Redis URL."""
    port = _free_port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=str(ROOT))
    worker = None
    try:
        import redis

        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker",
             "--concurrency", str(workers), "--pool", "prefork", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.environ["BENCH_REDIS_URL"] = url
        yield url
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
    rpc_jobs: int = 500, throughput_jobs: int = 5000, runs: int = 3, chain_jobs: int = 200
) -> dict[str, float]:
    """RPC latency p50/p99 (ms), chain-of-3 p50 (ms), throughput (jobs/s) and the submit loop
    alone (s) of Celery; medians over ``runs``."""
    import importlib
    import statistics

    from celery import chain

    from .common import percentile

    with running_celery() as url:
        os.environ["BENCH_REDIS_URL"] = url
        celery_app = importlib.reload(importlib.import_module("bench.celery_app"))
        noop = celery_app.noop
        noop.delay(0).get(timeout=60)  # warm up: workers ready
        p50s, p99s, rates, chains, submits = [], [], [], [], []
        for _ in range(runs):
            lat = []
            for i in range(rpc_jobs):
                t0 = time.perf_counter()
                noop.delay(i).get(timeout=30)
                lat.append((time.perf_counter() - t0) * 1000)
            p50s.append(percentile(lat, 0.5))
            p99s.append(percentile(lat, 0.99))
            lat = []
            for i in range(chain_jobs):
                t0 = time.perf_counter()
                chain(noop.s(i), noop.s(), noop.s()).apply_async().get(timeout=30)
                lat.append((time.perf_counter() - t0) * 1000)
            chains.append(percentile(lat, 0.5))
            t0 = time.perf_counter()
            results = [noop.delay(i) for i in range(throughput_jobs)]
            submits.append(time.perf_counter() - t0)
            for r in results:
                r.get(timeout=120)
            rates.append(throughput_jobs / (time.perf_counter() - t0))
        return {
            "rpc_p50_ms": statistics.median(p50s),
            "rpc_p99_ms": statistics.median(p99s),
            "throughput": statistics.median(rates),
            "chain_p50_ms": statistics.median(chains),
            "submit_seconds": statistics.median(submits),
        }


if __name__ == "__main__":
    print(measure(rpc_jobs=100, throughput_jobs=1000, runs=1))
