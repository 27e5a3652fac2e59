"""The Weather Station's Starlette app factory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from atmosphere.db.base import Database
from atmosphere.settings import Settings

from .api import routes
from .core import Station
from .security import ASGIApp, Guard, Message, Receive, Scope, Send, require_token_if_exposed

STATIC = Path(__file__).parent / "static"
# Scripts and styles only from the station itself: even if some job data slipped past the
# page's escaping, an injected <script> or inline handler could not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def index(request: Request) -> Response:
    """The single page (every view is a client-side route under ``#/``)."""
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


def create_app(
    settings: Settings, database: Database, *, clock: Callable[[], float] = time.time
) -> Starlette:
    """The station for ``database``; raises ConfigError when exposed without a token."""
    require_token_if_exposed(settings)
    station = Station(settings, database, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        station.start()
        try:
            yield
        finally:
            station.stop()

    app = Starlette(
        routes=[
            Route("/", index),
            *routes(),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders), Middleware(Guard, keys=station.keys)],
        lifespan=lifespan,
    )
    app.state.station = station
    return app
