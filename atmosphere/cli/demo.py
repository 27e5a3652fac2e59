"""``atmosphere demo``: a whole Atmosphere on this machine, busy with real jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from atmosphere.settings import DEFAULTS


def demo(
    duration: Annotated[float, typer.Option(help="Seconds to run (0: until Ctrl-C).", min=0)] = 0,
    clouds: Annotated[int, typer.Option(help="How many clouds to start.", min=1)] = 2,
    station_port: Annotated[int, typer.Option(help="Weather Station port.")] = DEFAULTS[
        "station_port"
    ],
    db_port: Annotated[int, typer.Option(help="Embedded database port.")] = DEFAULTS["db_port"],
    data_dir: Annotated[str, typer.Option(help="The embedded database's files.")] = DEFAULTS[
        "data_dir"
    ],
    rate: Annotated[float, typer.Option(help="Jobs submitted per second.", min=0.1)] = 8.0,
) -> None:
    """Start a dispatcher, clouds and the Weather Station, and keep them busy with real jobs."""
    from atmosphere.demo.run import run_demo

    code = run_demo(
        duration=duration,
        clouds=clouds,
        station_port=station_port,
        db_port=db_port,
        data_dir=data_dir,
        rate=rate,
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(demo)
