"""``atmosphere schedules``: define, list, pause, resume, run now and remove periodic schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._options import DbUrl, Root

if TYPE_CHECKING:
    from atmosphere.db.base import Database
    from atmosphere.paths import Paths
    from atmosphere.settings import Settings

schedules_app = typer.Typer(
    name="schedules",
    help="Periodic schedules run by the leading dispatcher.",
    no_args_is_help=True,
)


def _duration(text: str, option: str) -> float:
    from atmosphere.errors import InvalidJob
    from atmosphere.validate import parse_duration

    try:
        return parse_duration(text, option)
    except InvalidJob as exc:
        raise typer.BadParameter(str(exc)) from None


def open_database(settings: Settings) -> Database:
    """The database these commands use (tests replace this)."""
    from atmosphere.db.connect import connect

    return connect(settings, wait=2.0)


@contextmanager
def _session(db_url: str | None, root: str | None) -> Iterator[tuple[Database, Paths]]:
    from atmosphere.errors import AtmosphereError
    from atmosphere.paths import Paths
    from atmosphere.settings import Settings

    settings = Settings.from_env().replace(database_url=db_url, root=root)
    try:
        db = open_database(settings)
    except AtmosphereError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        yield db, Paths(settings.root)
    except AtmosphereError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()


@schedules_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The schedule's name (letters, digits, _ and -).")],
    job_type: Annotated[str, typer.Argument(help="The job type each tick submits.")],
    cron: Annotated[str | None, typer.Option(help='Crontab expression, e.g. "0 3 * * *".')] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone for --cron.")] = "UTC",
    every: Annotated[
        str | None, typer.Option(help="Interval instead of --cron: 90s, 5m, 1h.")
    ] = None,
    job_name: Annotated[
        str | None, typer.Option(help="The job's name (default: the schedule's).")
    ] = None,
    data: Annotated[str | None, typer.Option(help="The job's data, as JSON.")] = None,
    timeout: Annotated[float | None, typer.Option(help="The job's timeout in seconds.")] = None,
    misfire: Annotated[str, typer.Option(help="skip, run_once or catch_up.")] = "skip",
    catch_up_max: Annotated[int, typer.Option(help="Most missed ticks catch_up fires.")] = 10,
    grace: Annotated[
        str, typer.Option(help="How late a tick may be and still be on time.")
    ] = "60s",
    db_url: DbUrl = None,
    root: Root = None,
) -> None:
    """Define (or redefine) a schedule; its pause state and history are kept."""
    from atmosphere.errors import InvalidSchedule
    from atmosphere.schedules import make_schedule, store_schedule

    try:
        job: dict[str, Any] = {"type": job_type, "name": job_name, "timeout": timeout}
        if data is not None:
            job["data"] = json.loads(data)
        schedule = make_schedule(
            name,
            {k: v for k, v in job.items() if v is not None},
            cron=cron,
            every=_duration(every, "--every") if every is not None else None,
            tz=tz,
            misfire=misfire,
            catch_up_max=catch_up_max,
            grace=_duration(grace, "--grace"),
        )
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--data is not JSON: {exc}") from None
    except InvalidSchedule as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with _session(db_url, root) as (db, paths):
        changed = store_schedule(db, paths, schedule)
    typer.echo(f"{'defined' if changed else 'unchanged'}: {name} ({schedule.describe()})")


@schedules_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db_url: DbUrl = None,
    root: Root = None,
) -> None:
    """Show every schedule: when it fires, its last and next tick, paused or not."""
    import time

    from atmosphere.schedules import load_schedules

    with _session(db_url, root) as (db, paths):
        schedules = load_schedules(db, paths)
    rows = [schedule_row(s, time.time()) for s in sorted(schedules.values(), key=lambda s: s.name)]
    if as_json:
        from atmosphere.wiretime import render_ms

        # The JSON keeps the times as stored (epoch ms), as it always printed them.
        stored = [{**r, "last": render_ms(r["last"]), "next": render_ms(r["next"])} for r in rows]
        typer.echo(json.dumps(stored, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Schedules")
    for column in ("name", "when", "job", "misfire", "state", "last", "next", "last job"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["when"],
            row["job"],
            row["misfire"],
            "paused" if row["paused"] else "active",
            _local(row["last"]),
            _local(row["next"]),
            row["last_job"] or "",
        )
    Console().print(table if rows else "no schedules")


@schedules_app.command("pause")
def pause(name: Annotated[str, typer.Argument()], db_url: DbUrl = None, root: Root = None) -> None:
    """Pause a schedule: no ticks fire until it is resumed."""
    from atmosphere.schedules import set_paused

    with _session(db_url, root) as (db, paths):
        set_paused(db, paths, name, True)
    typer.echo(f"paused: {name}")


@schedules_app.command("resume")
def resume(name: Annotated[str, typer.Argument()], db_url: DbUrl = None, root: Root = None) -> None:
    """Resume a paused schedule (ticks missed meanwhile follow its misfire policy)."""
    from atmosphere.schedules import set_paused

    with _session(db_url, root) as (db, paths):
        set_paused(db, paths, name, False)
    typer.echo(f"resumed: {name}")


@schedules_app.command("run-now")
def run_now(
    name: Annotated[str, typer.Argument()], db_url: DbUrl = None, root: Root = None
) -> None:
    """Ask the leading dispatcher to run the schedule's job once, now."""
    from atmosphere.schedules import request_run

    with _session(db_url, root) as (db, paths):
        request_run(db, paths, name)
    typer.echo(f"run requested: {name}")


@schedules_app.command("remove")
def remove(name: Annotated[str, typer.Argument()], db_url: DbUrl = None, root: Root = None) -> None:
    """Delete a schedule (jobs it already fired are not touched)."""
    from atmosphere.schedules import remove_schedule

    with _session(db_url, root) as (db, paths):
        remove_schedule(db, paths, name)
    typer.echo(f"removed: {name}")


def schedule_row(schedule: Any, now: float) -> dict[str, Any]:
    """One schedule as plain data for display: times in epoch seconds."""
    from atmosphere.schedules import next_fire
    from atmosphere.triggers import utc

    nxt = next_fire(schedule, utc(now))
    return {
        "name": schedule.name,
        "when": schedule.describe(),
        "job": schedule.job.type,
        "misfire": schedule.misfire.value,
        "paused": schedule.paused,
        "last": schedule.last,
        "next": nxt.timestamp() if nxt is not None else None,
        "last_job": schedule.last_job,
    }


def _local(at: float | None) -> str:
    if at is None:
        return "-"
    from datetime import datetime

    return datetime.fromtimestamp(at).astimezone().strftime("%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    """Add ``atmosphere schedules ...`` to the CLI."""
    app.add_typer(schedules_app)
