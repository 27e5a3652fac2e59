"""Callback mid-chain: the caller is answered after job1, and the chain goes on with job2.

Run:  python examples/callback_mid_chain.py
(it starts `atmosphere dispatcher`, which starts the embedded database, and a cloud on tasks.py)
"""

from __future__ import annotations

import time
from typing import Any

from _local import local_atmosphere
from tasks import app, first, second

from atmosphere import chain
from atmosphere.jobs import payload  # records hold results encoded (docs/protocol.md)


def main() -> None:
    # callback=True on job1: the one response is job1's result, as soon as it is ready.
    handle = chain(
        first.s({"param1": "x"}, name="early", callback=True), second.s({"param2": "y"})
    ).submit()
    print("answered after job1:", handle.get())

    # The chain went on: job2 (id "{chain id}-1") ran, and its result is recorded.
    record = f"{app.settings.root}/jobs/{handle.id}-1"
    deadline = time.monotonic() + 30
    while app.database.get(f"{record}/state") != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.1)
    print("then job2 ran and returned:", payload(app.database.get(record), "result"))

    # The original form: `callback: true` on a chain member.
    jobs: list[dict[str, Any]] = [
        {"type": "first", "name": "orig", "data": {}, "timeout": 30, "callback": True},
        {"type": "second", "data": {"param2": "abc"}},
    ]
    print("original form answered with:", app.submit(jobs, lambda e, d: None).get())


if __name__ == "__main__":
    with local_atmosphere():
        try:
            main()
        finally:
            app.close()
