"""The Weather Station: Atmosphere's live monitoring web app.

``serve(settings, database, host=None, port=None)`` starts it on a background thread and returns
a handle with ``.url`` and ``.stop()`` (the dispatcher and ``atmosphere station`` use it);
``create_app(settings, database)`` is the Starlette app itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from atmosphere.db.base import Database
    from atmosphere.settings import Settings

    from .server import StationHandle


def serve(
    settings: Settings, database: Database, host: str | None = None, port: int | None = None
) -> StationHandle:
    """Start the station on ``host:port`` (default: the settings'); port 0 picks a free one."""
    from .server import serve as _serve

    return _serve(settings, database, host=host, port=port)


def create_app(settings: Settings, database: Database, **options: Any) -> Starlette:
    """The station's Starlette app for ``database``."""
    from .app import create_app as _create_app

    return _create_app(settings, database, **options)


__all__ = ["create_app", "serve"]
