"""The Celery side of the jobs benchmark: a no-op task on a Redis broker and result backend."""

from __future__ import annotations

import os

from celery import Celery

_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=_URL, backend=_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(data: object = None) -> object:
    """Do nothing, return the input: the round trip is all that is measured."""
    return data
