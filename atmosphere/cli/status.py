"""``atmosphere status``: clouds, queues, jobs in flight and dispatchers, as tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ._options import DbUrl, Root

if TYPE_CHECKING:
    from rich.console import Console

    from atmosphere.overview import Overview


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def render(view: Overview, console: Console, lease_seconds: float | None = None) -> None:
    """Print the overview as rich tables."""
    import time

    from rich.table import Table

    from atmosphere.scheduler.leadership.lease import describe
    from atmosphere.settings import DEFAULTS

    clouds = Table(title="Clouds", title_justify="left")
    for column in ("cloud", "types", "slots", "load", "state", "heartbeat", "done", "failed"):
        clouds.add_column(column)
    for c in view.clouds:
        clouds.add_row(
            c.name if c.name == c.id else f"{c.name} ({c.id})",
            ", ".join(c.types),
            f"{c.held}/{c.info.slots}" + (f"+{c.info.lent}" if c.info.lent else ""),
            f"{c.info.load:.2f}",
            str(c.state),
            _age(c.heartbeat_age),
            str(c.info.done),
            str(c.info.failed),
        )
    if not view.clouds:
        clouds.add_row("(no cloud registered)", "", "", "", "", "", "", "")
    console.print(clouds)

    queues = Table(title="Queues", title_justify="left")
    queues.add_column("type")
    queues.add_column("waiting", justify="right")
    queues.add_column("")
    for job_type, depth in view.queues.items():
        note = "no cloud for this type" if job_type in view.orphan_types else ""
        queues.add_row(job_type, str(depth), f"[yellow]{note}[/yellow]" if note else "")
    if not view.queues:
        queues.add_row("(empty)", "0", "")
    console.print(queues)
    for job_type in view.orphan_types:
        console.print(
            f"[yellow]warning:[/yellow] {view.queues[job_type]} job(s) of type {job_type!r} "
            "wait: no cloud for this type is running"
        )
    console.print(
        f"in flight: {view.in_flight}   settling: {view.settling}   delayed: {view.delayed}   "
        f"chains: {view.chains}"
    )

    dispatchers = Table(title="Dispatchers", title_justify="left")
    for column in ("dispatcher", "host", "pid", "role", "heartbeat"):
        dispatchers.add_column(column)
    for d in view.dispatchers:
        info = d.info
        dispatchers.add_row(d.id, info.host, str(info.pid or ""), info.role, _age(d.heartbeat_age))
    if not view.dispatchers:
        dispatchers.add_row(
            "[red](no dispatcher running: jobs are not assigned)[/red]", "", "", "", ""
        )
    console.print(dispatchers)
    lease = DEFAULTS["lease_seconds"] if lease_seconds is None else lease_seconds
    console.print(describe(view.lease, time.time(), lease))


def status(
    db_url: DbUrl = None,
    root: Root = None,
) -> None:
    """Show clouds (types, load, busy/idle, heartbeat age), queue depths, jobs in flight."""
    import time

    from rich.console import Console

    from atmosphere.db.connect import connect
    from atmosphere.errors import AtmosphereError
    from atmosphere.overview import summarize
    from atmosphere.paths import Paths
    from atmosphere.settings import Settings

    settings = Settings.from_env().replace(database_url=db_url, root=root)
    try:
        db = connect(settings)
        try:
            live = db.get(Paths(settings.root).live)
        finally:
            db.close()
    except AtmosphereError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    view = summarize(live, time.time(), settings.dead_after)
    render(view, Console(), settings.lease_seconds)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(status)
