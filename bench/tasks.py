"""The no-op task of the jobs benchmark, run by ``atmosphere cloud bench.tasks``.

It returns its input, so what the benchmark measures is the round trip through the database,
the dispatcher and a cloud, not the work.
"""

from __future__ import annotations

from typing import Any

from atmosphere.app import Atmosphere
from atmosphere.types import Ticket

app = Atmosphere("bench")


@app.task("noop", timeout=900)
def noop(ticket: Ticket, data: Any) -> Any:
    """Do nothing; return the input (the same work as the Celery baseline's ``noop``)."""
    return data
