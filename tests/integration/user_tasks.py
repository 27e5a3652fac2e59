"""Tasks written the way a Celery user and a port of the original library write them (issue 10),
run by real ``atmosphere cloud tests.integration.user_tasks`` processes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from atmosphere import Atmosphere, Settings, Ticket
from atmosphere.db.base import Database


def make_app(settings: Settings | None = None, database: Database | None = None) -> Atmosphere:
    """The app with every task of these tests registered."""
    app = Atmosphere("users", settings=settings, database=database)

    @app.task
    def first(ticket: Ticket, data: Any) -> Any:
        return {"a": 1, "b": 2, "c": 3}

    @app.task
    def second(ticket: Ticket, data: Any) -> Any:
        return {"seen": data, "name": ticket["name"]}

    @app.task
    def echo(ticket: Ticket, data: Any) -> Any:
        return data

    @app.task
    def not_found(ticket: Ticket, data: Any) -> Any:
        app.done_with(ticket, {"code": 404, "reason": "no such user", "data": data}, {"tried": 1})

    together: list[asyncio.Event] = []  # made on the cloud's event loop by the first job
    arrived: list[str] = []

    @app.task
    async def rendezvous(ticket: Ticket, data: Any) -> Any:
        """Answers once ``data`` jobs of this type are awaiting at once (10 s at most)."""
        if not together:
            together.append(asyncio.Event())
        arrived.append(ticket["id"])
        if len(arrived) >= int(data):
            together[0].set()
        await asyncio.wait_for(together[0].wait(), 10)
        return {"together": len(arrived), "thread": threading.current_thread().name}

    return app


app = make_app()
