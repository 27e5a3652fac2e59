"""The outbox coalesces submissions into one update per round trip and loses none of them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from atmosphere import Atmosphere, DatabaseError, RequestRefused
from atmosphere.errors import SubmitFailed
from atmosphere.outbox import Entry, Outbox, first_batch, isolates, merged, writes_inline
from tests.unit.jobs_fakes import QUIET, RecordingDatabase


class GatedDatabase(RecordingDatabase):
    """Holds every update until the test opens the gate, so writes stay in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def update(self, path: str, values: Mapping[str, Any]) -> None:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super().update(path, values)


class Writes:
    """A write function recording what it got; refuses updates that contain a poison key."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.updates: list[dict[str, Any]] = []
        self.failed: list[tuple[list[str], BaseException]] = []
        self.written: list[list[str]] = []
        self.error = error

    def write(self, batch: list[Entry[str]]) -> None:
        if self.error is not None:
            raise self.error
        writes = merged(batch)
        if "poison" in writes:
            raise RequestRefused("invalid value at poison", status=400)
        self.updates.append(writes)

    def fail(self, owners: list[str], exc: BaseException) -> None:
        self.failed.append((owners, exc))

    def done(self, owners: list[str]) -> None:
        self.written.append(owners)


def entry(key: str, size: int = 10) -> Entry[str]:
    return Entry({key: 1}, size, key)


def outbox(writes: Writes, **options: Any) -> Outbox[str]:
    # gap inf: the writer thread writes everything, as under a burst
    kwargs: dict[str, Any] = {
        "max_jobs": 500,
        "max_bytes": 10_000,
        "max_queued": 1000,
        "gap": float("inf"),
    }
    kwargs.update(options)
    return Outbox(writes.write, writes.fail, done=writes.done, **kwargs)


@pytest.mark.parametrize(
    ("sizes", "max_jobs", "max_bytes", "expected"),
    [
        ([10] * 7, 3, 1000, 3),  # by count
        ([40, 40, 40], 10, 100, 2),  # by bytes
        ([500, 1], 10, 100, 1),  # the head alone is too large: sent alone, for the server
        ([1], 10, 100, 1),
    ],
)
def test_first_batch(sizes: list[int], max_jobs: int, max_bytes: int, expected: int) -> None:
    assert first_batch(sizes, max_jobs, max_bytes) == expected


@pytest.mark.parametrize(
    ("queued", "sending", "since", "expected"),
    [
        (0, False, 0.5, True),  # a lone entry after a quiet spell: the caller writes it
        (0, False, 0.0001, False),  # part of a burst: the writer coalesces it
        (0, True, 0.5, False),  # a write in flight: ride in the next one
        (3, False, 0.5, False),  # entries queued: keep the order, go behind them
    ],
)
def test_writes_inline(queued: int, sending: bool, since: float, expected: bool) -> None:
    assert writes_inline(queued, sending, since, gap=0.001) is expected


def test_a_lone_entry_is_written_by_the_caller_and_a_burst_by_the_writer() -> None:
    threads: list[str] = []
    now = [0.0]
    writes = Writes()

    def write(values: list[Entry[str]]) -> None:
        threads.append(threading.current_thread().name)
        writes.write(values)

    box: Outbox[str] = Outbox(
        write,
        writes.fail,
        max_jobs=500,
        max_bytes=10_000,
        max_queued=1000,
        gap=1.0,
        name="the-writer",
        clock=lambda: now[0],
    )
    now[0] = 5.0  # quiet since the outbox was made
    box.put(entry("lone"))
    assert threads == [threading.current_thread().name]  # written before put() returned
    box.put(entry("burst"))  # within the gap: queued for the writer
    assert box.close(10)
    assert threads[1:] == ["the-writer"]
    assert [k for u in writes.updates for k in u] == ["lone", "burst"]


def test_only_refusals_are_isolated() -> None:
    assert isolates(RequestRefused("bad", status=400))
    assert not isolates(DatabaseError("connection refused"))


def test_a_refused_batch_fails_only_its_poison_entry() -> None:
    # Given a batch of three whose middle entry the server refuses
    writes = Writes()
    box = outbox(writes)
    gate = threading.Event()
    original = writes.write

    def slow_first(values: list[Entry[str]]) -> None:
        assert gate.wait(10)
        original(values)

    box._write = slow_first
    box.put(entry("a"))  # in flight, held at the gate
    for key in ("b", "poison", "c"):
        box.put(entry(key))
    gate.set()
    assert box.close(10)
    # I expect b and c written, and only the poison entry failed
    written = {key for update in writes.updates for key in update}
    assert written == {"a", "b", "c"}
    assert [owners for owners, _ in writes.failed] == [["poison"]]
    # and each written entry hears of it once, the poison one never
    assert sorted(o for owners in writes.written for o in owners) == ["a", "b", "c"]


def test_an_unreachable_database_fails_every_entry_and_logs_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writes = Writes(error=DatabaseError("connection refused"))
    box = outbox(writes)
    with caplog.at_level(logging.ERROR, logger="atmosphere.outbox"):
        box.put(entry("a"))
        assert box.flush(10)
    assert [owners for owners, _ in writes.failed] == [["a"]]
    assert "connection refused" in caplog.text


def test_close_writes_what_is_queued_and_refuses_more() -> None:
    writes = Writes()
    box = outbox(writes)
    for i in range(50):
        box.put(entry(f"k{i}"))
    assert box.close(10)
    assert sum(len(u) for u in writes.updates) == 50
    with pytest.raises(RuntimeError):
        box.put(entry("late"))


def test_a_full_outbox_holds_the_putter_back_until_the_writer_takes_some() -> None:
    # Given a writer stuck on its first write and room for two queued entries
    gate = threading.Event()
    writes = Writes()

    def write(values: list[Entry[str]]) -> None:
        gate.wait(10)
        writes.write(values)

    box: Outbox[str] = Outbox(
        write,
        writes.fail,
        max_jobs=500,
        max_bytes=10_000,
        max_queued=2,
        gap=float("inf"),
    )
    box.put(entry("a"))
    assert box.flush(0.2) is False  # a is in flight
    box.put(entry("b"))
    box.put(entry("c"))
    third = threading.Thread(target=box.put, args=(entry("d"),))
    third.start()
    third.join(0.2)
    # I expect the fourth put to wait, and to go through once the writer moves on
    assert third.is_alive()
    gate.set()
    third.join(10)
    assert not third.is_alive()
    assert box.close(10)
    assert [k for u in writes.updates for k in u] == ["a", "b", "c", "d"]


# -- through the app ----------------------------------------------------------------------------


@pytest.fixture
def gated() -> Any:
    db = GatedDatabase()
    app = Atmosphere("t", settings=QUIET, database=db)

    @app.task("mail")
    def mail(ticket: Any, data: Any) -> Any:
        return data

    yield app, db
    db.gate.set()
    app.close()


def test_delay_returns_at_once_and_submissions_in_flight_time_share_one_update(
    gated: tuple[Atmosphere, GatedDatabase],
) -> None:
    # Given a database whose first write is held in flight
    app, db = gated
    writer = threading.Thread(target=app.tasks["mail"].delay, args=(0,))
    writer.start()  # a lone submission: written by its caller, held at the gate
    assert db.entered.wait(5)
    # When 100 more jobs are submitted meanwhile
    handles = [app.tasks["mail"].delay(i) for i in range(1, 101)]
    # Then every delay() returned before any write finished, and once the database answers
    # they go in one update (two in all, not 101), in the order they were made
    assert db.updates == [] and not any(h.done() for h in handles)
    db.gate.set()
    writer.join(10)
    assert app.maker.flush(10)
    assert len(db.updates) == 2
    queued = [key.rsplit("/", 1)[1] for key in db.updates[1][1] if key.startswith("live/queue")]
    assert queued == [h.id for h in handles]


def test_closing_the_app_writes_queued_submissions_first(
    gated: tuple[Atmosphere, GatedDatabase],
) -> None:
    app, db = gated
    writer = threading.Thread(target=app.tasks["mail"].delay, args=(0,))
    writer.start()
    assert db.entered.wait(5)
    handles = [app.tasks["mail"].submit(data=i, forget=True) for i in range(10)]
    db.gate.set()
    writer.join(10)
    app.close()
    assert all(db.get(f"atmosphere/live/queue/mail/{h.id}") is not None for h in handles)


def test_a_failed_write_is_raised_by_get_even_for_fire_and_forget() -> None:
    db = RecordingDatabase()
    db.fail_writes = True
    app = Atmosphere("t", settings=QUIET, database=db)
    try:
        tracked = app.submit({"type": "mail"}, lambda e, d: None)
        forgotten = app.submit({"type": "mail"})
        assert app.maker.flush(10)
        for handle in (tracked, forgotten):
            with pytest.raises(SubmitFailed, match="may not have been submitted"):
                handle.get(timeout=5)
        assert app.maker.pending == 0
    finally:
        app.close()


def test_an_unsized_entry_is_sized_when_queued_so_batches_keep_their_byte_limit() -> None:
    # Given entries put without a size (a cloud's completion) while a write is in flight
    writes = Writes()
    gate, first = threading.Event(), threading.Event()

    def write(batch: list[Entry[str]]) -> None:
        first.set()
        assert gate.wait(10)
        writes.write(batch)

    box = Outbox(write, writes.fail, max_jobs=500, max_bytes=20, max_queued=1000, gap=0.0)
    putter = threading.Thread(target=box.put, args=(Entry({"a": 1}, None, "a"),))
    putter.start()  # alone: written by its own thread, unsized
    assert first.wait(10)  # and in flight, so the next ones queue
    for key in "bcd":
        box.put(Entry({key: 1}, None, key))
    gate.set()
    putter.join(10)
    assert box.close(10)
    # Then each queued one was sized by its encoding ({"b":1}: 7 bytes): two to an update
    assert [sorted(u) for u in writes.updates] == [["a"], ["b", "c"], ["d"]]
