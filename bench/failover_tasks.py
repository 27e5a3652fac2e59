"""Tasks for the failover benchmark: each run of a job appends its id to this process's log file.

Run by ``atmosphere cloud bench.failover_tasks``; ``FAILOVER_LOG_DIR`` names the directory. A job
id appearing twice across the files is a job executed twice.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from atmosphere.app import Atmosphere
from atmosphere.types import Ticket

app = Atmosphere("failover-bench")
_lock = threading.Lock()
_log: Any = None


def _record(job_id: str) -> None:
    global _log
    with _lock:
        if _log is None:
            directory = os.environ.get("FAILOVER_LOG_DIR", ".")
            _log = open(os.path.join(directory, f"{os.getpid()}.log"), "a", buffering=1)  # noqa: SIM115
        _log.write(job_id + "\n")


@app.task("work", timeout=60)
def work(ticket: Ticket, data: Any) -> Any:
    """A short job of the steady stream."""
    _record(ticket["id"])
    return data


@app.task("tick", timeout=60)
def tick(ticket: Ticket, data: Any) -> Any:
    """The job each schedule tick submits."""
    _record(ticket["id"])
    return None
