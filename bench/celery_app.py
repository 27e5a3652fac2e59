"""The Celery side of the jobs benchmark: the same tasks on a Redis broker and result backend.

Celery at its defaults (prefetch multiplier 4, early acks, JSON): only the broker URL is set,
and startup retries, which quiet a deprecation warning. ``count`` ignores its result, Celery's
idiom for fire-and-forget, as ``submit(forget=True)`` writes no response on our side.
"""

from __future__ import annotations

import os

from celery import Celery

from bench.completions import report

_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=_URL, backend=_URL)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task(name="noop")
def noop(data: object = None) -> object:
    """Do nothing, return the input: the round trip is all that is measured."""
    return data


@app.task(name="count", ignore_result=True)
def count(path: str) -> None:
    """Report this task's completion to the bench's pipe (``bench/completions.py``)."""
    report(path)
