"""The one summary of ``live/`` (pure): clouds and their condition, queue depths, jobs in
flight, dispatchers. ``atmosphere status`` (``cli/status.py``) prints it; the Weather Station
(``station/views.py``) shows it; each presenter only lays it out.

Malformed records are left out, never raised: one bad write must not blank a dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atmosphere.cloud_state import CloudState, cloud_state
from atmosphere.jobs import InvalidRecord
from atmosphere.presence import CloudInfo, DispatcherInfo


def children(node: Any) -> dict[str, Any]:
    """A database node as a dict of children (Firebase may hand back a list for int keys)."""
    if isinstance(node, dict):
        return node
    if isinstance(node, list):
        return {str(i): v for i, v in enumerate(node) if v is not None}
    return {}


def heartbeat_age(
    heartbeat: float | None, now: float, changed: float | None = None
) -> float | None:
    """Seconds since a heartbeat, None if never seen; ``changed`` (when the reader saw the
    value appear, on its own clock) bounds it under clock skew."""
    if heartbeat is None:
        return None if changed is None else max(0.0, now - changed)
    age = now - heartbeat
    if changed is not None:
        age = min(age, now - changed)  # seen appearing then: it cannot be older
    return max(0.0, age)


@dataclass(frozen=True)
class CloudRow:
    """One registered cloud: its record, what it holds, and its condition at ``now``."""

    info: CloudInfo
    held: int
    state: CloudState
    heartbeat_age: float | None

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self.info.types))

    @property
    def alive(self) -> bool:
        """False once its heartbeat is overdue."""
        return self.state is not CloudState.DEAD

    @property
    def busy(self) -> bool:
        """True when its inbox is full (the dispatcher will give it nothing more)."""
        return self.state is CloudState.BUSY


@dataclass(frozen=True)
class DispatcherRow:
    """One announced dispatcher and the age of its heartbeat at ``now``."""

    info: DispatcherInfo
    heartbeat_age: float | None

    @property
    def id(self) -> str:
        return self.info.id


@dataclass
class Overview:
    """What ``live/`` holds, summed up."""

    clouds: list[CloudRow] = field(default_factory=list)  # by id
    queues: dict[str, int] = field(default_factory=dict)  # waiting jobs per type, by type
    orphan_types: list[str] = field(default_factory=list)  # queued, but no live cloud for them
    in_flight: int = 0  # assigned: in some cloud's inbox
    settling: int = 0
    delayed: int = 0
    chains: int = 0
    dispatchers: list[DispatcherRow] = field(default_factory=list)  # by id
    lease: dict[str, Any] | None = None


def cloud_rows(
    clouds: Any,
    inbox: Any,
    now: float,
    dead_after: float,
    changed_at: Mapping[str, float] | None = None,
) -> list[CloudRow]:
    """Each readable cloud record of ``live/clouds``, by id, with its condition at ``now``."""
    held = children(inbox)
    rows = []
    for cloud_id, raw in sorted(children(clouds).items()):
        try:
            info = CloudInfo.from_json(raw, cloud_id)
        except InvalidRecord:
            continue
        age = heartbeat_age(info.heartbeat, now, (changed_at or {}).get(cloud_id))
        count = len(children(held.get(cloud_id)))
        state = cloud_state(
            heartbeat_age=age,
            dead_after=dead_after,
            draining=info.state == "draining",
            held=count,
            capacity=info.capacity,
        )
        rows.append(CloudRow(info, count, state, age))
    return rows


def queue_depths(queue: Any) -> dict[str, int]:
    """Waiting jobs per type in ``live/queue``, by type (a type with none is left out)."""
    depths = {t: len(children(jobs)) for t, jobs in sorted(children(queue).items())}
    return {t: n for t, n in depths.items() if n}


def dispatcher_rows(dispatchers: Any, now: float) -> list[DispatcherRow]:
    """Each readable presence record of ``live/dispatchers``, by id."""
    rows = []
    for dispatcher_id, raw in sorted(children(dispatchers).items()):
        try:
            info = DispatcherInfo.from_json(raw, dispatcher_id)
        except InvalidRecord:
            continue
        rows.append(DispatcherRow(info, heartbeat_age(info.heartbeat, now)))
    return rows


def summarize(
    live: Any, now: float, dead_after: float, changed_at: Mapping[str, float] | None = None
) -> Overview:
    """Summarize a ``live/`` value at ``now`` (seconds)."""
    live = children(live)
    inbox = children(live.get("inbox"))
    clouds = cloud_rows(live.get("clouds"), inbox, now, dead_after, changed_at)
    queues = queue_depths(live.get("queue"))
    served = {t for c in clouds if c.alive for t in c.types}
    lease = live.get("lease")
    return Overview(
        clouds=clouds,
        queues=queues,
        orphan_types=[t for t in queues if t not in served],
        in_flight=sum(len(children(jobs)) for jobs in inbox.values()),
        settling=len(children(live.get("outcomes"))),
        delayed=len(children(live.get("delayed"))),
        chains=len(children(live.get("chains"))),
        dispatchers=dispatcher_rows(live.get("dispatchers"), now),
        lease=lease if isinstance(lease, dict) else None,
    )
