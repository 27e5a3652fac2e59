"""Tasks written the way a Celery user and a port of the original library write them (issue 10),
run by real ``atmosphere cloud tests.integration.user_tasks`` processes."""

from __future__ import annotations

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
    def not_found(ticket: Ticket, data: Any) -> Any:
        app.done_with(ticket, {"code": 404, "reason": "no such user", "data": data}, {"tried": 1})

    return app


app = make_app()
