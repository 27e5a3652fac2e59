"""A cloud writes the completions that finish while a completion write is in flight as ONE
update (issue 9), a refused batch fails only its poison completion, and an assignment stays
held until its completion is committed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from atmosphere import InvalidResult
from atmosphere.errors import RequestRefused
from tests.support import wait_until
from tests.unit.test_cloud import World

Writes = Mapping[str, Any]


def _outcomes(writes: Writes) -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in writes if k.startswith("live/outcomes/"))


class Gate:
    """Holds every completion update at a gate until the test opens it; records each one."""

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.completions: list[list[str]] = []  # job ids of each completion update, in order
        self.refuse: Callable[[Writes], bool] = lambda writes: False
        update = world.db.update

        def gated(path: str, values: Writes) -> None:
            jobs = _outcomes(values)
            if jobs:
                self.entered.set()
                assert self.open.wait(10), "the test never opened the gate"
                if self.refuse(values):
                    raise RequestRefused("cannot PATCH: HTTP 400: Invalid data", status=400)
                self.completions.append(jobs)
            update(path, values)

        monkeypatch.setattr(world.db, "update", gated)


@pytest.fixture
def world() -> Iterator[World]:
    w = World(slots=4)
    yield w
    w.close()


def _held_in_flight(world: World, gate: Gate) -> Any:
    """A first job whose completion write is in flight, held at the gate."""
    first = world.app.tasks["echo"].delay("first")
    assert gate.entered.wait(5)
    return first


def test_completions_finishing_during_a_write_go_together_in_one_update(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a completion write in flight
    gate = Gate(world, monkeypatch)
    first = _held_in_flight(world, gate)
    # When three more jobs finish meanwhile
    others = [world.app.tasks["echo"].delay(i) for i in range(3)]
    wait_until(lambda: world.cloud.unwritten == 4, 5, what="three completions queued")
    gate.open.set()
    # Then they are written together, in one update after the first, with the record once
    assert [h.get(timeout=5)["data"] for h in others] == [0, 1, 2]
    assert first.get(timeout=5)["data"] == "first"
    assert gate.completions == [[first.id], sorted(h.id for h in others)]
    batch = next(v for _, v in world.db.updates if len(_outcomes(v)) == 3)
    assert sum(k.startswith("live/clouds/") for k in batch) == 1
    assert world.get(f"live/clouds/{world.cloud.id}/done") == 4
    assert world.cloud.unwritten == 0


def test_a_refused_batch_fails_only_its_poison_completion_with_invalid_result(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database that refuses any completion carrying the word "poison"
    gate = Gate(world, monkeypatch)
    gate.refuse = lambda writes: "poison" in repr(writes)
    first = _held_in_flight(world, gate)
    # When a poison completion and two good ones queue up behind it
    good = [world.app.tasks["echo"].delay(i) for i in range(2)]
    poison = world.app.tasks["echo"].delay("poison")
    wait_until(lambda: world.cloud.unwritten == 4, 5, what="three completions queued")
    gate.open.set()
    # Then the good ones are committed and only the poison job fails, with InvalidResult
    assert [h.get(timeout=5)["data"] for h in good] == [0, 1]
    with pytest.raises(InvalidResult, match="refused to store this job's completion"):
        poison.get(timeout=5)
    assert first.get(timeout=5)["data"] == "first"
    assert world.get(f"jobs/{poison.id}/state") == "failed"
    assert world.get(f"live/inbox/{world.cloud.id}") is None  # every slot freed
    assert world.get(f"live/clouds/{world.cloud.id}/failed") == 1
    assert world.cloud.unwritten == 0


def test_an_exclusive_cloud_holds_a_job_until_its_completion_is_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()  # one slot, no prefetch
    try:
        gate = Gate(world, monkeypatch)
        first = _held_in_flight(world, gate)
        # While its completion is in flight the job still holds the slot: nothing else is
        # assigned to the cloud, let alone run
        second = world.app.tasks["echo"].delay("second")
        world.app.maker.flush(5)
        world.dispatcher.pump()  # (not db.drain(): the cloud's stream thread writes the first)
        assert world.get(f"live/inbox/{world.cloud.id}/{first.id}") is not None
        assert world.get(f"live/queue/echo/{second.id}") is not None
        assert world.cloud.unwritten == 1 and not second.done()
        # Once it is committed, the next job is assigned and runs
        gate.open.set()
        assert first.get(timeout=5)["data"] == "first"
        assert second.get(timeout=5)["data"] == "second"
    finally:
        world.close()


def test_stop_writes_pending_completions_before_it_deregisters(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a completion in flight when the cloud is asked to stop
    gate = Gate(world, monkeypatch)
    first = _held_in_flight(world, gate)
    world.dispatcher.close()
    stopper = threading.Thread(target=world.cloud.stop, kwargs={"grace": 5.0})
    stopper.start()
    # Then the stop waits for it rather than handing the finished job back
    stopper.join(0.3)
    assert stopper.is_alive()
    gate.open.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert first.get(timeout=5)["data"] == "first"
    assert world.get(f"jobs/{first.id}/state") == "succeeded"
    assert world.get(f"live/queue/echo/{first.id}") is None
    assert world.get(f"live/clouds/{world.cloud.id}") is None


def test_a_prefetching_cloud_takes_one_events_assignments_and_batches_their_completions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    world.replace_cloud(name="pf", concurrency=1, prefetch=3)
    try:
        world.dispatcher.close()
        gate = Gate(world, monkeypatch)
        # Given four jobs assigned to the cloud in ONE update, as the dispatcher batches them
        handles = [world.app.tasks["echo"].delay(i) for i in range(4)]
        assert world.app.maker.flush(5)
        paths, cid = world.app.paths, world.cloud.id
        writes: dict[str, Any] = {}
        for h in handles:
            entry = world.get(f"live/queue/echo/{h.id}")
            writes[paths.rel(paths.inbox(cid, h.id))] = {**entry, "epoch": 1}
            writes[paths.rel(paths.queue("echo", h.id))] = None
        world.db.update(paths.root, writes)
        # When the first completion is held in flight, the others still run one at a time
        # (the thread that finished the first runs the next without waiting for the write,
        # which the outbox's writer makes) and queue up behind it
        wait_until(lambda: world.cloud.unwritten == 4, 5, what="all four finished")
        assert world.cloud.running == 0
        gate.open.set()
        # Then those not in the first update go together in one update after it
        assert [h.get(timeout=5)["data"] for h in handles] == [0, 1, 2, 3]
        assert len(gate.completions) <= 2 and gate.completions[0][0] == handles[0].id
        assert sorted(sum(gate.completions, [])) == sorted(h.id for h in handles)
    finally:
        world.close()
