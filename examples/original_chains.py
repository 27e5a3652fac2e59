"""The original README's chains, callback mid-chain, fire-and-forget and jobs calling jobs, in
its own words: job dicts, ``submit([job1, job2], callback)`` and handlers that finish with
``done_with``.

Run:  python examples/original_chains.py
(it starts `atmosphere dispatcher`, which starts the embedded database; the rain cloud runs in
this process)
"""

from __future__ import annotations

import threading
import time
from typing import Any

from _local import local_atmosphere

from atmosphere import JobError, Ticket, rain_cloud, rain_maker


def first(ticket: Ticket, data: Any) -> None:
    rain_cloud.done_with(ticket, None, {"a": 1, "b": 2, "c": 3})


def second(ticket: Ticket, data: Any) -> None:
    rain_cloud.done_with(ticket, None, {"seen": data, "name": ticket["name"]})


def sync_user(ticket: Ticket, data: Any) -> None:
    rain_cloud.done_with(ticket, None, {"user": ticket["name"], "synced": True})


def report(ticket: Ticket, data: Any) -> None:
    """Jobs calling jobs: rain clouds are also rain makers."""
    users = data["users"]
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def collect(user: str) -> Any:
        def callback(error: JobError | None, result: Any) -> None:
            with lock:
                results[user] = str(error) if error else result
                if len(results) == len(users):
                    rain_cloud.done_with(ticket, None, [results[u] for u in users])

        return callback

    for user in users:
        rain_cloud.submit({"type": "syncUser", "name": user, "timeout": 30}, collect(user))


handle_jobs = {"first": first, "second": second, "syncUser": sync_user, "report": report}


def submit_and_wait(jobs: Any) -> Any:
    """Submit with a callback and wait for it (a script has nothing else to do meanwhile)."""
    answered = threading.Event()
    got: list[Any] = []

    def callback(error: JobError | None, data: Any) -> None:
        got.append(data if error is None else error)
        answered.set()

    rain_maker.submit(jobs, callback)
    answered.wait(60)
    return got[0] if got else "no answer"


def main() -> None:
    rain_cloud.init("responder", handle_jobs)
    rain_maker.init("requester")

    # Submit a Job --> Job --> Callback: job2's data is its own merged with {"first": ...}
    job1 = {"type": "first", "name": "job1", "data": {"param1": "initial message"}, "timeout": 5}
    job2 = {"type": "second", "data": {"param2": "initial message"}}
    print("chain returned:", submit_and_wait([job1, job2]))

    # Submit a Job --> Callback --> Job: answered after job1; job2 still runs
    job1_cb = {**job1, "name": "special job", "callback": True}
    print("answered after job1:", submit_and_wait([job1_cb, job2]))

    # Submit a Job --> Job (fire-and-forget): no callback, nothing is tracked
    handle = rain_maker.submit([job1, job2], None)
    state = f"{rain_maker.app.settings.root}/jobs/{handle.id}-1/state"
    deadline = time.monotonic() + 30
    while rain_maker.app.database.get(state) != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.1)
    print("fire-and-forget chain, job2:", rain_maker.app.database.get(state))

    # Jobs calling jobs (recursing)
    users = {"type": "report", "data": {"users": ["ada", "grace"]}, "timeout": 30}
    print("report returned:", submit_and_wait(users))


if __name__ == "__main__":
    with local_atmosphere(tasks=None):
        try:
            main()
        finally:
            rain_maker.close()
            rain_cloud.close()
