"""A dispatcher with ``inline_events`` (as ``atmosphere dispatcher`` runs): the stream's thread
steps over each read's events itself; the loop thread runs timers and is woken for new ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from atmosphere.scheduler.desk import Component, Desk
from atmosphere.scheduler.dispatcher import Dispatcher
from atmosphere.scheduler.state import Change
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from tests.support import wait_until
from tests.unit.dispatcher_kit import R, complete, inbox, register, submit

BOUND = 10.0


class Threads:
    """A component noting the thread each queued job reached the dispatcher on."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def changed(self, changes: Sequence[Change]) -> None:
        if any(c.section == "queue" and c.new is not None for c in changes):
            self.names.append(threading.current_thread().name)

    def tick(self, desk: Desk, now: float) -> float | None:
        return None


@pytest.fixture
def mem() -> Iterator[MemoryDatabase]:
    database = MemoryDatabase()  # real clocks: the dispatcher's threads really wait
    yield database
    database.close()


def start(
    db: MemoryDatabase, components: Sequence[Component] = (), settle_delay: float = 0.0
) -> Dispatcher:
    settings = Settings(dead_after=30.0, heartbeat_interval=10.0, retention=3600.0)
    d = Dispatcher(
        db,
        settings,
        dispatcher_id="d1",
        components=components,
        settle_delay=settle_delay,
        inline_events=True,
    )
    d.start()
    return d


def state(db: MemoryDatabase, job_id: str) -> object:
    return db.get(f"{R}/jobs/{job_id}/state")


def test_events_are_stepped_on_the_stream_thread_and_jobs_go_through(mem: MemoryDatabase) -> None:
    threads = Threads()
    register(mem, "c1", "t", hb=2**41)
    d = start(mem, components=[threads])
    try:
        for n in range(5):
            submit(mem, f"j{n}")
        for n in range(5):
            job_id = f"j{n}"
            wait_until(lambda: job_id in inbox(mem, "c1"), BOUND, "assigned")  # noqa: B023
            complete(mem, "c1", job_id, result=n)
            wait_until(lambda: state(mem, job_id) == "succeeded", BOUND)  # noqa: B023
        wait_until(lambda: not mem.get(f"{R}/live/outcomes"), BOUND, "outcomes settled")
    finally:
        d.stop()
    assert threads.names and all(name.startswith("memory-listener") for name in threads.names)
    assert d.counts["assigned"] == 5
    # No step set a timer sooner than the loop thread's own: it was never woken for nothing.
    assert d.counts.get("loop_woken", 0) == 0


def test_a_timer_an_event_sets_wakes_the_sleeping_loop_thread(mem: MemoryDatabase) -> None:
    # Held bookkeeping is flushed by a timer ``settle_delay`` after the step that held it; the
    # loop thread, asleep until its next own timer, must be woken for it.
    register(mem, "c1", "t", hb=2**41)
    d = start(mem, settle_delay=0.05)
    try:
        submit(mem, "j1")
        wait_until(lambda: "j1" in inbox(mem, "c1"), BOUND, "assigned")
        woken = d.counts.get("loop_woken", 0)
        complete(mem, "c1", "j1", result=1)
        wait_until(lambda: not mem.get(f"{R}/live/outcomes"), BOUND, "the held settlement written")
        assert d.counts.get("loop_woken", 0) > woken
    finally:
        d.stop()


def test_replacing_the_stream_while_its_thread_waits_to_step_does_not_deadlock(
    mem: MemoryDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(mem, "c1", "t", hb=2**41)
    d = start(mem)
    holding, at_the_lock = threading.Event(), threading.Event()
    hold = d.intake._hold

    def noted_hold(stream: int) -> bool:
        at_the_lock.set()
        return hold(stream)

    def resubscribe_holding_the_step_lock() -> None:
        with d.intake.lock:  # as a timer's step does
            holding.set()
            at_the_lock.wait(BOUND)
            d._resubscribe(0.0)

    try:
        mem.drain()
        monkeypatch.setattr(d.intake, "_hold", noted_hold)
        helper = threading.Thread(target=resubscribe_holding_the_step_lock, daemon=True)
        helper.start()
        assert holding.wait(BOUND)
        submit(mem, "j1")  # the old stream's thread now waits for the lock
        helper.join(BOUND)
        assert not helper.is_alive(), "closing the old stream waited on its thread for good"
        wait_until(lambda: "j1" in inbox(mem, "c1"), BOUND, "assigned from the new stream")
    finally:
        d.stop()
