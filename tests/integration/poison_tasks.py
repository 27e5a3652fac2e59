"""Tasks for the poison-chain tests (``test_jobs_chain_poison.py``, ``test_dispatcher_body_limit.py``).

The cloud loads ``app`` (``atmosphere cloud tests.integration.poison_tasks``): every task of
``jobs_tasks`` plus two whose results the database takes from the cloud but not one step later,
in the next chain step's queue entry.
"""

from __future__ import annotations

from typing import Any

from atmosphere import Ticket
from tests.integration.jobs_tasks import make_app

app = make_app()


def nested(depth: int) -> Any:
    """``{"a": {"a": ... 1}}``, ``depth`` objects deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@app.task("nest")
def nest(ticket: Ticket, data: Any) -> Any:
    """A result ``data`` objects deep."""
    return nested(int(data))


@app.task("blob")
def blob(ticket: Ticket, data: Any) -> Any:
    """A string of ``data`` characters."""
    return "x" * int(data)
