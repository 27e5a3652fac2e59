"""A submission wakes no thread that has nothing to do, and every waiter still hears its news.

Each needless wake-up is a thread switch per job on the submit path (issue 9); these tests pin
down who is woken: the deadline thread only for an earlier deadline, the outbox writer only for
entries behind a write, every get() of a handle when its response arrives.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from atmosphere import Atmosphere, JobTimeout
from atmosphere import maker as maker_module
from atmosphere.handle import Handle
from atmosphere.maker import wakes_too_late
from atmosphere.outbox import Entry, Outbox, wakes_someone
from atmosphere.types import Ticket
from tests.support import wait_until
from tests.unit.jobs_fakes import QUIET, RecordingDatabase


class CountingCondition:
    """Counts notify_all() calls on a condition, passing them on."""

    def __init__(self, cond: threading.Condition) -> None:
        self.calls = 0
        self._notify_all = cond.notify_all

    def __call__(self) -> None:
        self.calls += 1
        self._notify_all()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    # The deadline thread would otherwise wake every second to delete replies: with an hour
    # between those, only a notify can wake it in time for a short deadline.
    monkeypatch.setattr(maker_module, "FLUSH_INTERVAL", 3600.0)
    app = Atmosphere("t", settings=QUIET, database=RecordingDatabase())

    @app.task("echo", timeout=600)
    def echo(ticket: Any, data: Any) -> Any:
        return data

    yield app
    app.close()


def sleeping_deadline_thread(app: Atmosphere) -> CountingCondition:
    """Start the maker and wait until its deadline thread sleeps; count notifies from then."""
    app.tasks["echo"].delay(0)
    maker = app.maker

    def asleep_until_the_first_deadline() -> bool:
        # (not merely asleep: it may have gone to sleep before that deadline was registered)
        with maker._cond:
            until = maker._tick_sleeps_until
            return until is not None and until == maker._deadlines[0][0]

    assert wait_until(asleep_until_the_first_deadline, 5)
    counting = CountingCondition(maker._cond)
    maker._cond.notify_all = counting  # type: ignore[method-assign]
    return counting


@pytest.mark.parametrize(
    ("sleeps_until", "deadline", "expected"),
    [(None, 5.0, False), (10.0, 5.0, True), (10.0, 20.0, False), (10.0, 10.0, False)],
)
def test_wakes_too_late(sleeps_until: float | None, deadline: float, expected: bool) -> None:
    assert wakes_too_late(sleeps_until, deadline) is expected


def test_later_deadlines_leave_the_deadline_thread_asleep(app: Atmosphere) -> None:
    counting = sleeping_deadline_thread(app)
    for i in range(20):
        app.tasks["echo"].delay(i)
    assert counting.calls == 0


def test_an_earlier_deadline_wakes_the_deadline_thread_in_time(app: Atmosphere) -> None:
    counting = sleeping_deadline_thread(app)
    handle = app.tasks["echo"].submit(data=1, timeout=0.1)
    with pytest.raises(JobTimeout, match="by its deadline"):
        handle.get(timeout=10)  # without the wake: a ResponseTimeout ("still waiting")
    assert counting.calls == 1


@pytest.mark.parametrize(
    ("flushers", "writer_waits", "queued", "closing", "expected"),
    [
        (0, True, 0, False, False),  # a lone write, nobody waiting: the RPC case
        (0, False, 3, False, False),  # the writer itself finished: it loops on its own
        (0, True, 3, False, True),
        (1, False, 0, False, True),
        (0, False, 0, True, True),
    ],
)
def test_wakes_someone(
    flushers: int, writer_waits: bool, queued: int, closing: bool, expected: bool
) -> None:
    assert wakes_someone(flushers, writer_waits, queued, closing) is expected


def test_a_lone_write_with_nobody_waiting_notifies_nobody() -> None:
    written: list[list[str]] = []
    box: Outbox[str] = Outbox(
        lambda batch: written.append([e.owner for e in batch]),
        lambda owners, exc: None,
        max_jobs=10,
        max_bytes=1000,
        max_queued=10,
        gap=0.0,
    )
    try:
        assert wait_until(lambda: box._waiting, 5)
        counting = CountingCondition(box._cond)
        box._cond.notify_all = counting  # type: ignore[method-assign]
        box.put(Entry({"a": 1}, 5, "a"))
        assert written == [["a"]]  # written inline, by the caller
        assert counting.calls == 0
        assert box.flush(5)
    finally:
        box.close(5)


def ticket() -> Ticket:
    return Ticket(type="echo", name="j", id="j")


def test_every_waiter_of_a_handle_wakes_when_it_is_settled() -> None:
    handle = Handle("j", ticket())
    results: list[Any] = []
    started = threading.Barrier(4)

    def wait() -> None:
        started.wait(5)
        results.append(handle.get(timeout=10))

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    started.wait(5)
    assert not handle.done()
    assert handle._settle(None, 42)
    assert not handle._settle(None, 43)  # the first response wins
    for thread in threads:
        thread.join(10)
    assert results == [42, 42, 42]
    assert handle.done() and handle.get(timeout=0) == 42


@pytest.mark.parametrize("timeout", [0.0, -1.0, 0.01])
def test_a_short_or_negative_wait_on_a_pending_handle_says_still_waiting(timeout: float) -> None:
    handle = Handle("j", ticket())
    with pytest.raises(JobTimeout, match="still waiting"):
        handle.get(timeout=timeout)
    handle._settle(None, 1)
    assert handle.get(timeout=timeout) == 1


def test_a_closed_maker_refuses_submissions_once_its_outbox_runs(app: Atmosphere) -> None:
    # Maker.submit reads its running outbox without the lock: closing must still be seen.
    maker = app.maker
    app.tasks["echo"].delay(1)
    maker.close()
    submission = app._prepare([app.tasks["echo"]._request(data=2)], tracked=True, as_chain=False)
    with pytest.raises(RuntimeError, match="closed"):
        maker.submit(submission)
    assert maker.pending == 0
