"""Time to receive one ~1 MB event: our StreamListener vs firebase-admin's ``Reference.listen()``.

For each run a listener is opened on a fresh empty path of the embedded server (a real child
process); a writer process (as a maker would be) ``set()``s a ~1 MB JSON value there. The clock
(CLOCK_MONOTONIC, shared by the processes) starts just before the write and stops when the
listener's callback has the decoded value. Two shapes: many small records (a realistic
snapshot, where the server's own commit dominates) and one 1 MB string (where it does not).
Medians of ``runs`` interleaved runs.
Run: ``python -m bench.listener``.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import firebase_admin
from firebase_admin import db as fdb

from atmosphere.db import embedded
from atmosphere.db.client import FirebaseDatabase
from bench.common import Row, print_table

NS = "bench-listener"
SHAPES = ("records", "string")
TIMEOUT = 300.0


def payload(size: int = 1_000_000, shape: str = "records") -> Any:
    """About ``size`` bytes of JSON: many small records (like a real snapshot) or one string."""
    if shape == "string":
        return "x" * size
    record = {"name": "job-name-" + "x" * 40, "state": "queued", "attempt": 1, "eta": 1.5e12}
    per = len(json.dumps(record)) + 12
    return {f"r{i:06d}": dict(record, attempt=i) for i in range(size // per)}


def _writer(url: str, size: int, conn: Connection) -> None:
    """Child process: on each (path, shape) received, set that payload; send back the timings."""
    db = FirebaseDatabase(url)
    values = {shape: payload(size, shape) for shape in SHAPES}
    try:
        while (job := conn.recv()) is not None:
            path, shape = job
            started = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
            db.set(path, values[shape])
            conn.send((started, time.monotonic()))
    finally:
        db.close()


def _time_one(
    listen: Callable[[str, Callable[[Any], None]], Callable[[], None]],
    writer: Connection,
    shape: str,
    expected: Any,
) -> tuple[float, float]:
    """Seconds from the start of the write to the callback holding the value, and of the write."""
    path = f"big/{uuid.uuid4().hex}"
    first = threading.Event()
    got = threading.Event()
    arrived: list[float] = []

    def on_data(data: Any) -> None:
        if data is None:
            first.set()  # the initial snapshot of the empty path
            return
        now = time.monotonic()  # before any check, so checking costs nothing to either side
        if type(data) is type(expected) and len(data) == len(expected):
            arrived.append(now)
            got.set()

    stop = listen(path, on_data)
    try:
        if not first.wait(TIMEOUT):
            raise TimeoutError("the listener never delivered its initial snapshot")
        writer.send((path, shape))
        started, written = writer.recv()
        if not got.wait(TIMEOUT):
            raise TimeoutError("the 1 MB event never arrived")
        return arrived[0] - started, written - started
    finally:
        stop()


def _time_snapshot(
    listen: Callable[[str, Callable[[Any], None]], Callable[[], None]],
    path: str,
    expected: Any,
) -> float:
    """Seconds from opening a listener on ``path`` (already holding ~1 MB) to its callback.

    No write is involved: this is the listener's own cost of receiving one 1 MB event (the
    initial ``put``), which a listener pays on every connect and reconnect.
    """
    got = threading.Event()
    arrived: list[float] = []

    def on_data(data: Any) -> None:
        now = time.monotonic()
        if type(data) is type(expected) and len(data) == len(expected):
            arrived.append(now)
            got.set()

    started = time.monotonic()
    stop = listen(path, on_data)
    try:
        if not got.wait(TIMEOUT):
            raise TimeoutError("the 1 MB snapshot never arrived")
        return arrived[0] - started
    finally:
        stop()


def _quiet_their_dying_threads(args: threading.ExceptHookArgs) -> None:
    if args.thread is not None and "_start_listen" in args.thread.name:
        return  # firebase-admin's listener thread crashes when its response is closed
    threading.__excepthook__(args)


def run(runs: int = 5, size: int = 1_000_000) -> list[tuple[str, float, float, float]]:
    """Rows (figure, ours, theirs, ratio theirs/ours) with median seconds of ``runs`` runs."""
    threading.excepthook = _quiet_their_dying_threads
    with tempfile.TemporaryDirectory() as data_dir:
        server = embedded.start("127.0.0.1", 0, data_dir)
        url = f"{server.url}?ns={NS}"
        ours_db = FirebaseDatabase(url)
        app = firebase_admin.initialize_app(
            options={"databaseURL": url}, name=f"bench-{uuid.uuid4().hex}"
        )
        try:

            def ours(path: str, cb: Callable[[Any], None]) -> Callable[[], None]:
                listener = ours_db.listen(path, lambda kind, p, data: cb(data))
                return listener.close

            def theirs(path: str, cb: Callable[[Any], None]) -> Callable[[], None]:
                registration = fdb.reference(path, app=app).listen(lambda event: cb(event.data))

                def close() -> None:
                    # Their close() joins a thread that stays blocked until the next keep-alive
                    # (30 s), and then dies with a traceback: close it in the background.
                    threading.Thread(target=registration.close, daemon=True).start()

                return close

            # The writer is another process (as a maker is), so its work does not compete with
            # the listener for this process's GIL.
            mine, theirs_end = multiprocessing.get_context("spawn").Pipe()
            child = multiprocessing.get_context("spawn").Process(
                target=_writer, args=(url, size, theirs_end), daemon=True
            )
            child.start()
            samples: dict[str, tuple[list[Any], list[Any]]] = {k: ([], []) for k in SHAPES}
            snapshots: tuple[list[float], list[float]] = ([], [])
            try:
                records = payload(size, "records")
                mine.send(("snapshot/records", "records"))
                mine.recv()
                for _ in range(runs):  # interleaved, so drift on a shared machine hits both
                    for shape in SHAPES:
                        expected = payload(size, shape)
                        samples[shape][0].append(_time_one(ours, mine, shape, expected))
                        samples[shape][1].append(_time_one(theirs, mine, shape, expected))
                    snapshots[0].append(_time_snapshot(ours, "snapshot/records", records))
                    snapshots[1].append(_time_snapshot(theirs, "snapshot/records", records))
            finally:
                mine.send(None)
                child.join(30)
        finally:
            ours_db.close()
            firebase_admin.delete_app(app)
            server.stop()
    out = []
    a, b = statistics.median(snapshots[0]), statistics.median(snapshots[1])
    mb = len(json.dumps(payload(size, "records"))) / 1e6
    out.append(
        (f"1 MB event ({mb:.2f} MB of records): listen -> initial put callback", a, b, b / a)
    )
    for shape in SHAPES:
        ours_s, theirs_s = samples[shape]
        mb = len(json.dumps(payload(size, shape))) / 1e6
        a = statistics.median(t for t, _ in ours_s)
        b = statistics.median(t for t, _ in theirs_s)
        wa = statistics.median(w for _, w in ours_s)
        wb = statistics.median(w for _, w in theirs_s)
        out.append((f"1 MB event ({mb:.2f} MB of {shape}): write -> callback", a, b, b / a))
        out.append(("  of which the write itself (same writer process)", wa, wb, wb / wa))
    return out


def rows(runs: int = 5) -> list[Row]:
    """The figures as rows of the shared benchmark table (seconds, medians of ``runs``)."""
    out: list[Row] = []
    for figure, ours, theirs, ratio in run(runs):
        out.append(Row("listener", figure, ours, "s", theirs, "firebase-admin listen()"))
        if not figure.startswith(" "):
            speedup = Row("listener", "  speed-up vs firebase-admin listen()", ratio, "x")
            speedup.target = ">= 20x"
            out.append(speedup)
    return out


def main() -> None:
    """Print the table."""
    print_table(rows())


if __name__ == "__main__":
    main()
