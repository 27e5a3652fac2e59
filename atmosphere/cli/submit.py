"""``atmosphere submit TYPE``: submit a job from the shell, and optionally wait for its result."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ._options import DbUrl, Root


def submit(
    job_type: Annotated[str, typer.Argument(metavar="TYPE", help="The job type (queue name).")],
    name: Annotated[str | None, typer.Option(help="A label for the job within its type.")] = None,
    data: Annotated[str, typer.Option(help="The job's data as JSON.")] = "null",
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the response.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait and print the result.")
    ] = False,
    db_url: DbUrl = None,
    root: Root = None,
) -> None:
    """Submit one job; print its id, or with --wait its result (exit 1 on a job error)."""
    from atmosphere.app import Atmosphere
    from atmosphere.errors import ConfigError, InvalidJob, JobError
    from atmosphere.settings import Settings

    from .cloud import connect_app

    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"--data is not JSON: {exc}") from None
    app = Atmosphere("shell", settings=Settings.from_env())
    try:
        connect_app(app, db_url, root, wait=5.0)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    job: dict[str, Any] = {"type": job_type, "data": payload}
    if name is not None:
        job["name"] = name
    if timeout is not None:
        job["timeout"] = timeout
    try:
        try:
            handle = app.submit(job, (lambda error, result: None) if wait else None)
        except InvalidJob as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if not wait:
            typer.echo(handle.id)
            return
        try:
            result = handle.get()
        except JobError as exc:
            typer.echo(f"{type(exc).__name__}: {exc}", err=True)
            if exc.remote_traceback:
                typer.echo(exc.remote_traceback, err=True)
            raise typer.Exit(1) from None
        typer.echo(json.dumps(result))
    finally:
        app.close()
        app.database.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(submit)
