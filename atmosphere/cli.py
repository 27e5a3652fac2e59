"""The ``atmosphere`` command line. Heavy imports (rich, the server) happen inside commands."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="atmosphere",
    help="Atmosphere: Python jobs and RPC on the Firebase Realtime Database.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
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
    from .localdb.server import run

    run(host=host, port=port, data_dir=data_dir, token=token, fsync=fsync)


def main() -> None:
    """Entry point of the ``atmosphere`` script."""
    app()


if __name__ == "__main__":
    main()
