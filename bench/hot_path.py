"""``python -m bench.hot_path``: CPU per job of the server's and the dispatcher's own code, in-process.

Whole-process figures (``bench jobs``) move by 20 % and more with the machine's load, because
batch sizes follow timing. These two replay the same work every time instead, so a change to
the server's write path or the dispatcher's decisions shows in a few seconds:

- **server**: ``LocalDb.handle`` (no sockets) with persistence, streams on ``live``, each
  cloud's inbox and the maker's replies (sinks that keep nothing), fed the PATCHes of N jobs as
  the system writes them: the maker's submissions (50 a PATCH), the dispatcher's assignments
  and settlements (a PATCH each round), each cloud's completions (a PATCH each round).
  Prints microseconds of CPU per job.
- **stream**: the read path of a cloud and of the maker: the SSE bytes the server sent to a
  cloud's inbox stream and to the maker's reply stream (captured from the **server** run), fed
  in the chunks the server wrote (rounds of 4 jobs, not 50: a few jobs an event, as clouds
  with ``--prefetch 4`` see them) through ``SSEParser`` and the listener's event decoding, then
  the cloud's inbox decoding (``JobSpec``) and the maker's (``Reply``). Prints microseconds of
  CPU per job for each.
- **dispatcher**: a ``Dispatcher`` on ``MemoryDatabase`` (``devkit.memory_dispatcher``)
  assigning and settling N jobs submitted and completed 50 at a time; the CPU of its steps
  minus the time spent inside the database's ``update``. Prints microseconds of CPU per job.

Each is the fastest of 3 runs (the least disturbed by other processes).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson

from atmosphere.db._sse import SSEParser
from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.db.stream import decode_event
from atmosphere.jobs import JobSpec, Reply
from atmosphere.localdb.service import LocalDb, StreamRequest
from atmosphere.localdb.store import Store
from atmosphere.testing import MemoryDatabase
from atmosphere.worker.inbox import inbox_changes
from devkit.memory_dispatcher import Clock as KitClock
from devkit.memory_dispatcher import R, inbox, make, register

JOBS = 3000
BATCH = 50
STREAM_BATCH = 4  # jobs per round for the stream part: a few jobs an event, as clouds see them
RUNS = 3
CLOUDS = ("c1", "c2")
ADMIN = {b"host": b"127.0.0.1", b"authorization": b"Bearer owner"}


class _Sink:
    """A stream connection that drops what it is sent (or keeps it, with ``keep``)."""

    def __init__(self, keep: bool = False) -> None:
        self.chunks: list[bytes] | None = [] if keep else None

    def write(self, data: bytes) -> int:
        if self.chunks is not None:
            self.chunks.append(bytes(data))
        return 0

    def end(self) -> None:
        """Nothing to close."""

    def abort(self) -> None:
        """Nothing to drop."""


def _spec(job_id: str, n: int) -> dict[str, Any]:
    return {
        "id": job_id,
        "type": "noop",
        "name": job_id,
        "data_json": str(n),
        "timeout": 900.0,
        "reply_to": "m1",
        "attempt": 1,
        "submitted": SERVER_TIMESTAMP,
    }


def _server_bodies(jobs: int, batch: int = BATCH) -> list[bytes]:
    """The root PATCHes of ``jobs`` jobs, ``batch`` at a time, in the order the system writes them."""
    bodies = []
    for start in range(0, jobs, batch):
        ids = [f"j{n:07d}" for n in range(start, min(start + batch, jobs))]
        submit: dict[str, Any] = {}
        for n, job_id in enumerate(ids, start):
            submit[f"atmosphere/jobs/{job_id}"] = {**_spec(job_id, n), "state": "queued"}
            submit[f"atmosphere/live/queue/noop/{job_id}"] = _spec(job_id, n)
        assign: dict[str, Any] = {}
        for n, job_id in enumerate(ids):
            cloud = CLOUDS[n % len(CLOUDS)]
            assign[f"atmosphere/live/queue/noop/{job_id}"] = None
            assign[f"atmosphere/live/inbox/{cloud}/{job_id}"] = {
                **_spec(job_id, n),
                "assigned": SERVER_TIMESTAMP,
                "epoch": 1,
            }
            assign[f"atmosphere/jobs/{job_id}/state"] = "assigned"
        complete: dict[str, dict[str, Any]] = {cloud: {} for cloud in CLOUDS}
        settle: dict[str, Any] = {}
        for n, job_id in enumerate(ids):
            cloud = CLOUDS[n % len(CLOUDS)]
            complete[cloud][f"atmosphere/live/inbox/{cloud}/{job_id}"] = None
            complete[cloud][f"atmosphere/live/outcomes/{job_id}"] = {
                "cloud": cloud,
                "attempt": 1,
                "ok": True,
                "result_json": str(n),
                "replied": True,
                "started": 1_800_000_000_000,
                "finished": SERVER_TIMESTAMP,
            }
            complete[cloud][f"atmosphere/jobs/{job_id}/state"] = "succeeded"
            complete[cloud][f"atmosphere/replies/m1/{job_id}"] = {"ok": True, "result_json": "1"}
            settle[f"atmosphere/live/outcomes/{job_id}"] = None
        bodies += [orjson.dumps(submit), orjson.dumps(assign)]
        bodies += [orjson.dumps(c) for c in complete.values()]
        bodies.append(orjson.dumps(settle))
    return bodies


def _serve(
    jobs: int, batch: int = BATCH, keep: bool = False
) -> tuple[float, dict[str, list[bytes]]]:
    """CPU seconds of ``LocalDb.handle`` for the PATCHes of ``jobs`` jobs, and (``keep``) the
    SSE chunks each listened path was sent."""
    bodies = _server_bodies(jobs, batch)
    sinks: dict[str, _Sink] = {}
    with tempfile.TemporaryDirectory(prefix="atmosphere-hot-path-") as data_dir:
        store = Store(data_dir)
        store.open()
        try:
            db = LocalDb(store)
            stream_head = {**ADMIN, b"accept": b"text/event-stream"}
            listened = ["atmosphere/live", "atmosphere/replies/m1"]
            listened += [f"atmosphere/live/inbox/{c}" for c in CLOUDS]
            for path in listened:
                stream = db.handle("GET", f"/{path}.json".encode(), b"", stream_head, b"")
                assert isinstance(stream, StreamRequest)
                sinks[path] = _Sink(keep)
                db.subscribe(stream, sink=sinks[path])
            query = b"print=silent"
            t0 = time.process_time()
            for body in bodies:
                db.handle("PATCH", b"/.json", query, ADMIN, body)
            spent = time.process_time() - t0
        finally:
            store.close()
    return spent, {path: sink.chunks or [] for path, sink in sinks.items()}


def server_us_per_job(jobs: int = JOBS) -> float:
    """CPU microseconds per job of ``LocalDb.handle`` for the PATCHes of ``jobs`` jobs."""
    return _serve(jobs)[0] * 1e6 / jobs


def _read(chunks: list[bytes], consume: Callable[[str, str, Any], None]) -> float:
    """CPU seconds to parse and decode ``chunks`` as ``StreamListener`` does, then ``consume``."""
    t0 = time.process_time()
    parser = SSEParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            decoded = decode_event(event)
            if decoded is not None:
                consume(*decoded)
    return time.process_time() - t0


def _cloud_consume(kind: str, path: str, data: Any) -> None:
    changes = inbox_changes(kind, path, data)
    assert changes is not None
    for job_id, raw in changes[0].items():
        if raw is not None:
            JobSpec.from_json(raw, job_id).data  # noqa: B018 (the handler reads its data)


def _maker_consume(kind: str, path: str, data: Any) -> None:
    entries = data if path == "/" else {path.strip("/"): data}
    for raw in entries.values() if isinstance(entries, dict) else ():
        if raw is not None:
            Reply.from_json(raw).result  # noqa: B018 (get() returns it)


def _events_of(kind: str, path: str, data: Any) -> None:
    """Consume nothing: the parser and the listener's decoding alone."""


def stream_us(jobs: int = JOBS) -> tuple[float, float, float]:
    """CPU microseconds per job of a cloud's and of the maker's read path (parse and decode),
    and per event of the parsing and the listener's decoding alone (the dispatcher's stream,
    ``live``, which carries every kind of event)."""
    chunks = _serve(jobs, STREAM_BATCH, keep=True)[1]
    # One cloud's stream carries half the jobs; the maker's all of them.
    cloud = _read(chunks[f"atmosphere/live/inbox/{CLOUDS[0]}"], _cloud_consume) * len(CLOUDS)
    maker = _read(chunks["atmosphere/replies/m1"], _maker_consume)
    live = chunks["atmosphere/live"]
    events = len(SSEParser().feed(b"".join(live)))
    parse = _read(live, _events_of)
    return cloud * 1e6 / jobs, maker * 1e6 / jobs, parse * 1e6 / events


def dispatcher_us_per_job(jobs: int = JOBS) -> float:
    """CPU microseconds per job of the dispatcher's steps, the database's update excluded."""
    db = MemoryDatabase()
    for cloud in CLOUDS:
        register(db, cloud, "noop", slots=4 * BATCH)
    d = make(db, KitClock())
    update = db.update
    in_db = 0.0

    def timed_update(*args: Any, **kwargs: Any) -> None:
        nonlocal in_db
        t0 = time.process_time()
        try:
            update(*args, **kwargs)
        finally:
            in_db += time.process_time() - t0

    db.update = timed_update  # type: ignore[method-assign]
    spent = 0.0

    def settle_down() -> None:
        nonlocal spent, in_db
        for _ in range(50):
            before = db.writes
            db.drain()
            in_db = 0.0
            t0 = time.process_time()
            d.step(0)
            spent += time.process_time() - t0 - in_db
            db.drain()
            if db.writes == before and d.intake.empty():
                return
        raise RuntimeError("the dispatcher did not settle down")

    for start in range(0, jobs, BATCH):
        submit: dict[str, Any] = {}
        for n in range(start, min(start + BATCH, jobs)):
            job_id = f"j{n:07d}"
            submit[f"jobs/{job_id}"] = {**_spec(job_id, n), "state": "queued"}
            submit[f"live/queue/noop/{job_id}"] = _spec(job_id, n)
        update(R, submit)
        settle_down()
        for cloud in CLOUDS:
            done: dict[str, Any] = {}
            for job_id in inbox(db, cloud):
                done[f"live/inbox/{cloud}/{job_id}"] = None
                done[f"live/outcomes/{job_id}"] = {
                    "cloud": cloud,
                    "attempt": 1,
                    "ok": True,
                    "result_json": "1",
                    "replied": True,
                    "started": 1_800_000_000_000,
                    "finished": SERVER_TIMESTAMP,
                }
                done[f"jobs/{job_id}/state"] = "succeeded"
            if done:
                update(R, done)
        settle_down()
    if db.get(f"{R}/live/outcomes") or db.get(f"{R}/live/queue"):
        raise RuntimeError("jobs were left unsettled or queued")
    return spent * 1e6 / jobs


def main() -> None:
    """Print the figures (the fastest of RUNS runs each)."""
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else JOBS
    server = min(server_us_per_job(jobs) for _ in range(RUNS))
    dispatcher = min(dispatcher_us_per_job(jobs) for _ in range(RUNS))
    reads = [stream_us(jobs) for _ in range(RUNS)]
    cloud, maker, parse = (min(r[i] for r in reads) for i in range(3))
    print(f"server, LocalDb.handle: {server:.1f} us of CPU per job ({jobs} jobs)")
    print(f"dispatcher, its steps on MemoryDatabase: {dispatcher:.1f} us of CPU per job")
    print(f"cloud, its inbox stream read and decoded: {cloud:.1f} us of CPU per job")
    print(f"maker, its reply stream read and decoded: {maker:.1f} us of CPU per job")
    print(f"SSE parsing and the listener's decoding: {parse:.2f} us of CPU per event")


if __name__ == "__main__":
    main()
