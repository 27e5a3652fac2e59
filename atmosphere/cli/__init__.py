"""The ``atmosphere`` command line: one module per command group, each with ``register(app)``.

Commands import their heavy dependencies (rich, the server, the dispatcher) inside the command
body, so ``atmosphere --help`` stays fast.
"""

from __future__ import annotations

import typer

from . import cloud, db, demo, dispatcher, schedules, station, status, submit

app = typer.Typer(
    name="atmosphere",
    help="Atmosphere: Python jobs and RPC on the Firebase Realtime Database.",
    no_args_is_help=True,
    add_completion=False,
)

for _module in (demo, db, dispatcher, cloud, submit, status, schedules, station):
    _module.register(app)


def main() -> None:
    """Entry point of the ``atmosphere`` script."""
    app()
