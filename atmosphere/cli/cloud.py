"""``atmosphere cloud myapp.tasks``: run a cloud (a worker process) for an app's tasks."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ._options import DbUrl, Root

if TYPE_CHECKING:
    from atmosphere.app import Atmosphere


def load_app(spec: str) -> Atmosphere:
    """The app named by ``module`` (its one Atmosphere) or ``module:attribute``."""
    from atmosphere.app import Atmosphere

    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so `myapp.tasks` works from the project directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import {module_name!r}: {exc}") from None
    if attribute:
        app = getattr(module, attribute, None)
        if not isinstance(app, Atmosphere):
            raise typer.BadParameter(f"{spec!r} is not an Atmosphere app")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, Atmosphere)]
    if len(apps) != 1:
        raise typer.BadParameter(
            f"{module_name!r} holds {len(apps)} Atmosphere apps; name one as {module_name}:<app>"
        )
    return apps[0]


def connect_app(app: Atmosphere, db_url: str | None, root: str | None, wait: float) -> None:
    """Point ``app`` at the database the options (or ATMOSPHERE_* variables) name."""
    from atmosphere.db.connect import connect

    settings = app.settings.replace(database_url=db_url, root=root)
    app.configure(settings=settings, database=connect(settings, wait=wait))


def cloud(
    module: Annotated[
        str, typer.Argument(help="The module holding the app, e.g. myapp.tasks (or module:app).")
    ],
    name: Annotated[
        str | None, typer.Option(help="A name for this cloud (default app@host:pid).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once (1: exclusive, the default).")
    ] = 1,
    prefetch: Annotated[
        int,
        typer.Option(min=0, help="Extra jobs to hold while busy, for throughput (default 0)."),
    ] = 0,
    grace: Annotated[
        float, typer.Option(help="Seconds running jobs get to finish on SIGTERM / Ctrl-C.")
    ] = 30.0,
    db_url: DbUrl = None,
    root: Root = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the database.")] = 30.0,
    log_level: Annotated[str, typer.Option(help="Log level (debug, info, warning).")] = "info",
) -> None:
    """Run a cloud: register the app's task types and run the jobs assigned to it."""
    import gc
    import logging
    import signal

    from atmosphere.errors import ConfigError
    from atmosphere.worker.cloud import Cloud

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from atmosphere import _redact

    _redact.install()  # tokens in logged URLs, whichever library logs them
    app = load_app(module)
    if not app.tasks:
        raise typer.BadParameter(f"{module!r} registers no task")
    try:
        connect_app(app, db_url, root, wait)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # Each job allocates a few hundred short-lived objects (its assignment parsed, its
    # completion built), so the young generation was collected every few jobs. Rarer
    # collections, as the dispatcher and the embedded server do: about 3 % fewer instructions
    # per job in-process. The CLI process only: an in-process cloud leaves the host's GC alone.
    gc.set_threshold(50_000, 20, 100)
    runtime = Cloud(app, name=name, concurrency=concurrency, prefetch=prefetch, grace=grace)
    interrupts = {"count": 0}

    def on_signal(signum: int, frame: object) -> None:
        if signum == signal.SIGINT:
            interrupts["count"] += 1
            if interrupts["count"] > 1:
                os._exit(130)  # a second Ctrl-C: stop now, the dispatcher requeues our jobs
        runtime.request_stop()  # a repeated SIGTERM just keeps draining

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runtime.run()
    except ConfigError as exc:  # another live cloud holds this uid (worker/uid.py)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        app.close()
        app.database.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(cloud)
