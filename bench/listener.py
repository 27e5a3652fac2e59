"""Time to receive one ~1 MB event: our StreamListener vs firebase-admin's ``Reference.listen()``.

For each run a listener is opened on a fresh empty path of the embedded server (a real child
process); the clock starts just before a ``set()`` of a ~1 MB JSON object to that path and stops
when the listener's callback has the decoded value. Medians of ``runs`` runs.
Run: ``python -m bench.listener``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import firebase_admin
from firebase_admin import db as fdb

from atmosphere.db import embedded
from atmosphere.db.client import FirebaseDatabase
from bench.common import Row, print_table

NS = "bench-listener"
TIMEOUT = 300.0


def payload(size: int = 1_000_000) -> dict[str, Any]:
    """A JSON object of about ``size`` bytes: many small records, like a real snapshot."""
    record = {"name": "job-name-" + "x" * 40, "state": "queued", "attempt": 1, "eta": 1.5e12}
    per = len(json.dumps(record)) + 12
    return {f"r{i:06d}": dict(record, attempt=i) for i in range(size // per)}


def _time_one(
    listen: Callable[[str, Callable[[Any], None]], Callable[[], None]],
    write: Callable[[str, Any], None],
    value: Any,
) -> tuple[float, float]:
    """Seconds from the start of the write to the callback holding the value, and of the write."""
    path = f"big/{uuid.uuid4().hex}"
    first = threading.Event()
    got = threading.Event()
    arrived: list[float] = []

    def on_data(data: Any) -> None:
        if data is None:
            first.set()  # the initial snapshot of the empty path
        elif isinstance(data, dict) and len(data) == len(value):
            arrived.append(time.perf_counter())
            got.set()

    stop = listen(path, on_data)
    try:
        if not first.wait(TIMEOUT):
            raise TimeoutError("the listener never delivered its initial snapshot")
        started = time.perf_counter()
        write(path, value)
        written = time.perf_counter() - started
        if not got.wait(TIMEOUT):
            raise TimeoutError("the 1 MB event never arrived")
        return arrived[0] - started, written
    finally:
        stop()


def _quiet_their_dying_threads(args: threading.ExceptHookArgs) -> None:
    if args.thread is not None and "_start_listen" in args.thread.name:
        return  # firebase-admin's listener thread crashes when its response is closed
    threading.__excepthook__(args)


def run(runs: int = 5, size: int = 1_000_000) -> list[tuple[str, float, float, float]]:
    """Rows (figure, ours, theirs, ratio theirs/ours) with median seconds of ``runs`` runs."""
    value = payload(size)
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

            ours_s, theirs_s = [], []
            for _ in range(runs):  # interleaved, so drift on a shared machine hits both
                ours_s.append(_time_one(ours, ours_db.set, value))
                theirs_s.append(_time_one(theirs, ours_db.set, value))
        finally:
            ours_db.close()
            firebase_admin.delete_app(app)
            server.stop()
    size_mb = len(json.dumps(value)) / 1e6
    a = statistics.median(t for t, _ in ours_s)
    b = statistics.median(t for t, _ in theirs_s)
    wa = statistics.median(w for _, w in ours_s)
    wb = statistics.median(w for _, w in theirs_s)
    return [
        (f"write -> callback, one {size_mb:.2f} MB event (s, median of {runs})", a, b, b / a),
        ("  of which the write itself (same writer)", wa, wb, wb / wa),
    ]


def rows(runs: int = 5) -> list[Row]:
    """The figures as rows of the shared benchmark table."""
    out: list[Row] = []
    (figure, ours, theirs, ratio), (write_figure, wours, wtheirs, _) = run(runs)
    out.append(Row("listener", figure, ours, "s", theirs, "firebase-admin listen()"))
    out.append(Row("listener", write_figure, wours, "s", wtheirs, "firebase-admin listen()"))
    out.append(Row("listener", "speed-up vs firebase-admin listen()", ratio, "x", target=">= 20x"))
    return out


def main() -> None:
    """Print the table."""
    print_table(rows())


if __name__ == "__main__":
    main()
