"""The clouds' side of every example: the handlers ``atmosphere cloud tasks`` runs.

Run a cloud on them yourself (from this directory) with ``atmosphere cloud tasks``; the example
scripts start one for you.
"""

from __future__ import annotations

import threading
from typing import Any

from atmosphere import LATER, Atmosphere, Ticket

app = Atmosphere("examples")


@app.task("hello", timeout=30)
def hello(ticket: Ticket, data: Any) -> str:
    """Celery style: return the result (or raise)."""
    return f"{data['msg1']} {data['msg2']}"


@app.task("remoteFunction", timeout=30)
def remote_function(ticket: Ticket, data: Any) -> Any:
    """The original style: finish with done_with(ticket, error, result), here from a timer thread."""
    print(f"Working on job {ticket['name']!r} with data: {data}", flush=True)

    def finish() -> None:
        app.done_with(ticket, None, "This string was generated inside the work function")

    threading.Timer(0.05, finish).start()
    return LATER  # "I will call done_with myself"


@app.task("first")
def first(ticket: Ticket, data: Any) -> dict[str, int]:
    """A chain's first job: its result becomes ``data["first"]`` of the next job."""
    return {"a": 1, "b": 2, "c": 3}


@app.task("second")
def second(ticket: Ticket, data: Any) -> Any:
    """A chain's next job: sees its own data plus the previous job's result."""
    return {"seen": data, "name": ticket["name"]}


@app.task("syncUser", timeout=30)
def sync_user(ticket: Ticket, data: Any) -> dict[str, Any]:
    """Sync one user (pretend)."""
    return {"user": ticket["name"], "synced": True}


@app.task("report", timeout=60)
def report(ticket: Ticket, data: Any) -> dict[str, Any]:
    """Recursion: a job that submits jobs and waits for them (clouds are makers too)."""
    handles = [sync_user.submit(name=user) for user in data["users"]]
    return {"report": [h.get() for h in handles]}


@app.task("reportOriginal", timeout=60)
def report_original(ticket: Ticket, data: Any) -> Any:
    """Recursion the original way: sub-jobs with callbacks; the last one calls done_with."""
    users = data["users"]
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def collect(user: str) -> Any:
        def callback(error: Exception | None, result: Any) -> None:
            with lock:
                results[user] = str(error) if error else result
                if len(results) == len(users):
                    app.done_with(ticket, None, {"report": [results[u] for u in users]})

        return callback

    for user in users:
        sync_user.submit(name=user, callback=collect(user))
    return LATER


@app.task("audit")
def audit(ticket: Ticket, data: Any) -> None:
    """A job nobody waits for (fire-and-forget): its outcome is only recorded."""
    print(f"audit: {data}", flush=True)
