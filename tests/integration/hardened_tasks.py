"""Tasks for the hardened fleet test: clouds and the maker sign in as limited users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atmosphere import Atmosphere, Retry, Settings, Ticket
from atmosphere.db.base import Database


def make_app(settings: Settings | None = None, database: Database | None = None) -> Atmosphere:
    """The app: an echo, two chain steps and a task that asks for one retry."""
    app = Atmosphere("hardened", settings=settings, database=database)

    @app.task("echo")
    def echo(ticket: Ticket, data: Any) -> Any:
        return {"echo": data}

    @app.task("first")
    def first(ticket: Ticket, data: Any) -> Any:
        return {"first": data}

    @app.task("second")
    def second(ticket: Ticket, data: Any) -> Any:
        return {"second": data}

    @app.task("flaky", retries=2)
    def flaky(ticket: Ticket, data: Any) -> Any:
        """Retry once: the first attempt leaves the marker file ``data`` and asks again."""
        marker = Path(str(data))
        if not marker.exists():
            marker.write_text(ticket["id"])
            raise Retry(delay=0.1)
        return {"attempts": 2}

    return app


app = make_app()
