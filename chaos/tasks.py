"""The tasks the chaos fleet's clouds run: ordinary work, and every poison issue 8 names.

Each handler first appends ``<time> <job id> <type> <pid>`` to ``exec-<pid>.log`` in
``$CHAOS_EXEC_DIR`` (one ``O_APPEND`` write per line, so lines from a process that is killed
mid-run are whole or absent): the ledger counts executions from these files, independently of
what the database or the makers say.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from atmosphere import Atmosphere, Settings, Ticket
from atmosphere.db.base import Database

EXEC_DIR_ENV = "CHAOS_EXEC_DIR"
# Dict levels in a result that no path in the database can hold (32 levels at most).
TOO_DEEP = 40
# Levels that a completion can store but the next chain step's queue entry, 2 levels deeper
# (``live/queue/{type}/{id}/data/{type}``), cannot: the chain poison of finding 2.
CHAIN_DEEP = 27
BAD_KEY_RESULT = {"ok": True, "a.b": 1}  # "." is refused in a Firebase key


def record(ticket: Ticket) -> None:
    """Note that this process is executing ``ticket`` (see the module docstring)."""
    directory = os.environ.get(EXEC_DIR_ENV)
    if not directory:
        return
    line = f"{time.time():.3f} {ticket['id']} {ticket['type']} {os.getpid()}\n".encode()
    path = Path(directory) / f"exec-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def nested(levels: int) -> Any:
    """``{"d": {"d": ... 1}}`` with ``levels`` dicts."""
    value: Any = 1
    for _ in range(levels):
        value = {"d": value}
    return value


def _mark() -> dict[str, Any]:
    # Unique per execution: two runs of one job give two different replies, so a duplicate
    # response cannot hide behind an identical payload.
    return {"pid": os.getpid(), "run": uuid.uuid4().hex[:12]}


def make_app(settings: Settings | None = None, database: Database | None = None) -> Atmosphere:
    """The app with every chaos task registered (clouds run it; the harness submits through it)."""
    app = Atmosphere("chaos", settings=settings, database=database)

    @app.task("noop")
    def noop(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return _mark()

    @app.task("sleep")
    def sleep(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        time.sleep(min(5.0, float(data or 0)))
        return _mark()

    @app.task("step")
    def step(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return _mark()

    # A handler's own submit fails while the database is down (a clear DatabaseError): like
    # any app that submits from a handler, these ask for another attempt.
    @app.task("r1", retries=3, retry_backoff=0.5)
    def r1(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return {"r1": app.tasks["r2"].delay(data).get(), **_mark()}

    @app.task("r2", retries=3, retry_backoff=0.5)
    def r2(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return {"r2": app.tasks["noop"].delay(data).get(), **_mark()}

    @app.task("poison_deep")
    def poison_deep(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return nested(TOO_DEEP if data is None else int(data))

    @app.task("poison_key")
    def poison_key(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return BAD_KEY_RESULT

    @app.task("poison_huge")
    def poison_huge(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        return "x" * (app.settings.max_data_bytes + 1024)

    @app.task("poison_exit")
    def poison_exit(ticket: Ticket, data: Any) -> Any:
        record(ticket)
        os._exit(1)  # as an OOM kill or a segfault would end the cloud

    return app


app = make_app()
