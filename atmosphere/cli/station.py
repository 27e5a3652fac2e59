"""``atmosphere station``: run the Weather Station on its own (the dispatcher also serves it)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._options import DbUrl


def station(
    db_url: DbUrl = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default 127.0.0.1; others need --token).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 3000).")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ATMOSPHERE_STATION_TOKEN", help="Access token (required off loopback)."
        ),
    ] = None,
) -> None:
    """Run the Weather Station, the live monitoring web GUI."""
    from atmosphere.db.connect import connect
    from atmosphere.errors import ConfigError
    from atmosphere.settings import Settings
    from atmosphere.station.security import require_token_if_exposed
    from atmosphere.station.server import serve

    try:
        settings = Settings.from_env().replace(
            database_url=db_url, station_host=host, station_port=port, station_token=token
        )
        require_token_if_exposed(settings)  # before connecting: fail fast on a bad setup
        database = connect(settings, wait=5.0)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        handle = serve(settings, database)
    except ConfigError as exc:
        database.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    suffix = "" if not settings.station_token else "  (open it with ?token=<your token>)"
    typer.echo(f"Weather Station on {handle.url}{suffix}")
    try:
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        database.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(station)
