"""``atmosphere dispatcher``: run the one process every job goes through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._options import DbUrl, Root

if TYPE_CHECKING:
    from atmosphere.db.base import Database
    from atmosphere.station.server import StationHandle


def dispatcher(
    db_url: DbUrl = None,
    root: Root = None,
    station: Annotated[
        bool, typer.Option("--station/--no-station", help="Serve the Weather Station.")
    ] = True,
    station_port: Annotated[
        int | None, typer.Option(help="Weather Station port (default 3000).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level (debug, info, warning).")] = "info",
) -> None:
    """Run the dispatcher: assign jobs, settle outcomes, retries, chains, dead clouds, GC."""
    import gc
    import logging
    import signal
    import threading

    from atmosphere.errors import ConfigError
    from atmosphere.scheduler.service import run
    from atmosphere.settings import Settings
    from atmosphere.station import serve

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from atmosphere import _redact

    _redact.install()  # tokens in logged URLs, whichever library logs them
    settings = Settings.from_env().replace(database_url=db_url, root=root)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Every job allocates hundreds of short-lived objects here (records parsed, writes built),
    # so the young generation was collected every few jobs, each time also walking the
    # long-lived view of every live job. Rarer collections: ~20 % less of the dispatcher's CPU
    # per job (bench.hot_path); its records hold no cycles, so memory barely moves. The
    # embedded server does the same (localdb/server.py).
    gc.set_threshold(50_000, 20, 100)

    def start_station(db: Database) -> StationHandle:
        return serve(settings, db, port=station_port)

    try:
        run(settings, stop=stop, station=start_station if station else None)
    except KeyboardInterrupt:
        stop.set()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(dispatcher)
