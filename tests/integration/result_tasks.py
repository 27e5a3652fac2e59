"""Tasks whose results the database would refuse, for ``test_jobs_invalid_result.py``.

The cloud loads ``app`` (``atmosphere cloud tests.integration.result_tasks``): every task of
``jobs_tasks`` plus three poison ones. Its data limit is raised far above the default, as an
operator might, so only the database's own limits stand between a huge result and the write.
"""

from __future__ import annotations

from typing import Any

from atmosphere import Settings, Ticket
from tests.integration.jobs_tasks import make_app
from tests.integration.poison_tasks import nested as nested

DEPTH = 40
HUGE_CHARS = 12_000_000  # over the 10 MB string limit, and thrice that over the body limit

app = make_app(Settings(max_data_bytes=100_000_000))


@app.task("deep")
def deep(ticket: Ticket, data: Any) -> Any:
    return nested(DEPTH)


@app.task("dotted")
def dotted(ticket: Ticket, data: Any) -> Any:
    return {"ok": 1, "a.b": 2}


@app.task("huge")
def huge(ticket: Ticket, data: Any) -> Any:
    return "x" * HUGE_CHARS
