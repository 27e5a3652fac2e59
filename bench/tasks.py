"""The tasks of the jobs benchmark, run by ``atmosphere cloud bench.tasks``.

``noop`` returns its input, so what the benchmark measures is the round trip through the
database, the dispatcher and a cloud, not the work. ``count`` is the fire-and-forget no-op: it
reports its completion to the bench (``bench/completions.py``), as the Celery side's does.
"""

from __future__ import annotations

from typing import Any

from atmosphere.app import Atmosphere
from atmosphere.types import Ticket
from bench.completions import report

app = Atmosphere("bench")


@app.task("noop", timeout=900)
def noop(ticket: Ticket, data: Any) -> Any:
    """Do nothing; return the input (the same work as the Celery baseline's ``noop``)."""
    return data


@app.task("count", timeout=900)
def count(ticket: Ticket, data: Any) -> None:
    """Report this job's completion to the bench's pipe (``data`` is its path)."""
    report(data)
