"""Tasks the integration tests run in real ``atmosphere cloud`` processes.

The clouds load ``app`` (``atmosphere cloud tests.integration.jobs_tasks``); a test builds its
own maker with ``make_app(settings, database)`` so each test has a fresh maker.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from atmosphere import Atmosphere, Settings, Ticket
from atmosphere.db.base import Database


def _step(k: int, ticket: Ticket, data: Any) -> Any:
    return {"step": k, "name": ticket["name"], "got": data}


def make_app(settings: Settings | None = None, database: Database | None = None) -> Atmosphere:
    """The app with every test task registered."""
    app = Atmosphere("itest", settings=settings, database=database)

    @app.task("echo")
    def echo(ticket: Ticket, data: Any) -> Any:
        return {"echo": data, "pid": os.getpid(), "ticket": dict(ticket)}

    @app.task("boom")
    def boom(ticket: Ticket, data: Any) -> Any:
        raise ValueError(f"boom: {data}")

    @app.task("nonjson")
    def nonjson(ticket: Ticket, data: Any) -> Any:
        return {"at": time}  # a module: not JSON

    @app.task("sleep")
    def sleep(ticket: Ticket, data: Any) -> Any:
        time.sleep(float(data))
        return {"slept": data, "pid": os.getpid()}

    @app.task("gate")
    def gate(ticket: Ticket, data: Any) -> Any:
        """Hold the slot until the test creates the file ``data`` (bounded), then finish."""
        deadline = time.monotonic() + 60
        while not os.path.exists(str(data)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"gate": data, "pid": os.getpid()}

    @app.task("die")
    def die(ticket: Ticket, data: Any) -> Any:
        """End the cloud's process at once, as an OOM kill or a segfault would."""
        os._exit(1)

    for k in range(1, 6):
        app.task(f"s{k}")(functools.partial(_step, k))

    @app.task("r1")
    def r1(ticket: Ticket, data: Any) -> Any:
        return {"r1": app.tasks["r2"].delay(data).get()}

    @app.task("r2")
    def r2(ticket: Ticket, data: Any) -> Any:
        return {"r2": app.tasks["r3"].delay(data).get()}

    @app.task("r3")
    def r3(ticket: Ticket, data: Any) -> Any:
        return {"r3": data, "pid": os.getpid()}

    return app


app = make_app()
