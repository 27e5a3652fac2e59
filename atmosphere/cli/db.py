"""``atmosphere db``: run the embedded Firebase-compatible database server."""

from __future__ import annotations

from typing import Annotated

import typer


def db(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 9400,
    data_dir: Annotated[str, typer.Option(help="Where the data lives.")] = ".atmosphere",
    token: Annotated[
        str | None, typer.Option(envvar="ATMOSPHERE_DB_TOKEN", help="Secret token (admin).")
    ] = None,
    fsync: Annotated[bool, typer.Option(help="fsync every write (power-loss durable).")] = False,
) -> None:
    """Run the embedded Firebase-compatible database server."""
    from ..localdb.server import run

    run(host=host, port=port, data_dir=data_dir, token=token, fsync=fsync)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(db)
