"""``atmosphere db``: run the embedded Firebase-compatible database server."""

from __future__ import annotations

from typing import Annotated

import typer

from atmosphere.localdb.store import COMPACT_AFTER_BYTES
from atmosphere.settings import DEFAULTS


def db(
    host: Annotated[str, typer.Option(help="Address to bind.")] = DEFAULTS["db_host"],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = DEFAULTS[
        "db_port"
    ],
    data_dir: Annotated[str, typer.Option(help="Where the data lives.")] = DEFAULTS["data_dir"],
    token: Annotated[
        str | None, typer.Option(envvar="ATMOSPHERE_DB_TOKEN", help="Secret token (admin).")
    ] = DEFAULTS["db_token"],
    fsync: Annotated[bool, typer.Option(help="fsync every write (power-loss durable).")] = DEFAULTS[
        "fsync"
    ],
    max_body: Annotated[int, typer.Option(help="Largest request body in bytes (413 above).")] = (
        32 * 1024 * 1024
    ),
    max_user_body: Annotated[
        int, typer.Option(help="Largest body from callers the rules judge (not admins).")
    ] = 4 * 1024 * 1024,
    rules: Annotated[
        str | None, typer.Option(help="Security rules file for namespaces that have none.")
    ] = None,
    keep_alive: Annotated[float, typer.Option(help="Seconds between SSE keep-alives.")] = 30.0,
    strict_indexes: Annotated[
        bool, typer.Option(help="Refuse child/value queries without a matching .indexOn.")
    ] = False,
    listener_buffer: Annotated[
        int, typer.Option(help="Bytes queued for one slow stream before it is dropped.")
    ] = 32 * 1024 * 1024,
    compact_after: Annotated[
        int,
        typer.Option(
            help="Log bytes after which a snapshot is written and logs pruned (or the last "
            "snapshot's size, if larger)."
        ),
    ] = COMPACT_AFTER_BYTES,
    max_client_connections: Annotated[
        int, typer.Option(help="Open connections one client address may hold (503 above).")
    ] = 1024,
    idle_timeout: Annotated[
        float, typer.Option(help="Seconds a connection may wait for its next request.")
    ] = 120.0,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds from a request's first byte to its last (408).")
    ] = 60.0,
    repair: Annotated[
        bool,
        typer.Option(
            help="Cut a log at a corrupt record (after a backup copy) instead of refusing to start."
        ),
    ] = False,
    users: Annotated[
        str | None,
        typer.Option(help="JSON file {token: auth}: limited users, judged by the rules."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Another Host name clients reach the server by (repeatable)."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="A browser origin allowed to call the server (repeatable)."),
    ] = None,
) -> None:
    """Run the embedded Firebase-compatible database server."""
    from atmosphere.localdb.server import run

    run(
        host=host,
        port=port,
        data_dir=data_dir,
        token=token,
        fsync=fsync,
        max_body=max_body,
        max_user_body=max_user_body,
        rules_file=rules,
        keep_alive=keep_alive,
        strict_indexes=strict_indexes,
        listener_buffer=listener_buffer,
        compact_after=compact_after,
        max_client_connections=max_client_connections,
        idle_timeout=idle_timeout,
        request_timeout=request_timeout,
        repair=repair,
        users_file=users,
        allow_hosts=allow_host or (),
        cors_origins=cors_origin or (),
    )


def _root() -> None:
    """Atmosphere: Python jobs and RPC on the Firebase Realtime Database."""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(db)
    # With a single command and no callback Typer would run ``db`` as the whole program and
    # refuse ``atmosphere db``; a root callback keeps it a command group.
    if app.registered_callback is None:
        app.callback()(_root)
