"""The dispatcher's collaborators work from a ``Desk`` (its view, paths, settings, stats, clock
and one way to write), so each runs here on a desk of its own, with no Dispatcher."""

from __future__ import annotations

from typing import Any

from atmosphere.jobs import JobSpec
from atmosphere.paths import Paths
from atmosphere.scheduler import housekeeping
from atmosphere.scheduler.analytics import MinuteStats
from atmosphere.scheduler.desk import Desk
from atmosphere.scheduler.periodic import PeriodicComponent
from atmosphere.scheduler.poison import Fallback
from atmosphere.scheduler.state import LiveState
from atmosphere.schedules import make_schedule
from atmosphere.settings import Settings

PATHS = Paths("atmosphere")
NOW_MS = 1_800_000_000_000


class Recorded:
    """A desk's write and count, recording what they are given."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def write(self, values: dict[str, Any], fallback: Fallback | None = None) -> None:
        self.writes.append(values)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def desk(state: LiveState, out: Recorded, *, leader: bool = True) -> Desk:
    return Desk(
        state=state,
        paths=PATHS,
        settings=Settings(dead_after=3.0, heartbeat_interval=1.0, max_deaths=2),
        stats=MinuteStats(),
        write=out.write,
        count=out.count,
        now=lambda: NOW_MS / 1000,
        is_leader=lambda: leader,
    )


def spec(job_id: str, deaths: int = 0) -> dict[str, Any]:
    return {"id": job_id, "type": "t", "name": "n", "timeout": 30, "deaths": deaths}


def test_a_silent_cloud_is_buried_through_the_desk_alone() -> None:
    state = LiveState()
    state.apply(
        "put",
        "",
        {
            "clouds": {"c1": {"types": {"t": True}, "slots": 1, "heartbeat": 1}},
            "inbox": {"c1": {"j1": spec("j1"), "j2": spec("j2", deaths=1)}},
        },
    )
    out = Recorded()
    last_seen = {"c1": 0.0}
    letters: list[tuple[str, str]] = []

    def dead_letter(job: JobSpec, error: dict[str, Any], cloud_id: str) -> None:
        letters.append((job.id, cloud_id))

    housekeeping.bury_dead_clouds(desk(state, out), last_seen, 10.0, dead_letter)

    (burial,) = out.writes
    assert burial[PATHS.clouds("c1")] is None
    assert PATHS.queue("t", "j1") in burial and PATHS.queue("t", "j2") not in burial
    assert letters == [("j2", "c1")]  # its second death reaches max_deaths
    assert last_seen == {} and out.counts == {"dead_clouds": 1, "cloud_died": 1}


def test_the_periodic_component_fires_only_while_its_desk_leads() -> None:
    asked = make_schedule("s", "t", every=3600).evolve(run_now=NOW_MS / 1000 - 1)
    state = LiveState()
    state.apply("put", "", {"schedules": {"s": asked.to_json()}})
    component = PeriodicComponent(PATHS)

    follower = Recorded()
    assert component.tick(desk(state, follower, leader=False), 0.0) is None
    assert follower.writes == []

    leader = Recorded()
    wake = component.tick(desk(state, leader), 0.0)
    assert wake is not None and wake > 0.0
    assert len(component.periodic.fired) == len(leader.writes) == 1
