"""A summary of ``live/`` for people: clouds, queues, jobs in flight, dispatchers (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atmosphere.cloud_state import CloudState, cloud_state
from atmosphere.jobs import CloudInfo, InvalidRecord
from atmosphere.wiretime import parse_ms


@dataclass(frozen=True)
class CloudRow:
    """One cloud as ``atmosphere status`` shows it."""

    id: str
    name: str
    types: tuple[str, ...]
    slots: int
    lent: int
    held: int
    load: float
    state: CloudState
    heartbeat_age: float | None
    done: int
    failed: int

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
    """One running dispatcher."""

    id: str
    host: str
    pid: int
    heartbeat_age: float | None
    role: str


@dataclass
class Overview:
    """Everything ``atmosphere status`` prints."""

    clouds: list[CloudRow] = field(default_factory=list)
    queues: dict[str, int] = field(default_factory=dict)
    orphan_types: list[str] = field(default_factory=list)  # queued, but no live cloud for them
    in_flight: int = 0
    settling: int = 0
    delayed: int = 0
    chains: int = 0
    dispatchers: list[DispatcherRow] = field(default_factory=list)
    lease: dict[str, Any] | None = None


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else max(0.0, now - then)


def _children(node: Any) -> dict[str, Any]:
    return node if isinstance(node, dict) else {}


def summarize(live: Any, now: float, dead_after: float) -> Overview:
    """Summarize a ``live/`` value at ``now`` (seconds); malformed parts are left out, never
    raised."""
    live = _children(live)
    out = Overview()
    inbox = _children(live.get("inbox"))
    for cloud_id, raw in sorted(_children(live.get("clouds")).items()):
        try:
            info = CloudInfo.from_json(raw, cloud_id)
        except InvalidRecord:
            continue
        age = _age(now, info.heartbeat)
        held = len(_children(inbox.get(cloud_id)))
        state = cloud_state(
            heartbeat_age=age,
            dead_after=dead_after,
            draining=info.state == "draining",
            held=held,
            capacity=info.capacity,
        )
        out.clouds.append(
            CloudRow(
                id=cloud_id,
                name=info.name,
                types=tuple(sorted(info.types)),
                slots=info.slots,
                lent=info.lent,
                held=held,
                load=info.load,
                state=state,
                heartbeat_age=age,
                done=info.done,
                failed=info.failed,
            )
        )
    for job_type, jobs in sorted(_children(live.get("queue")).items()):
        if _children(jobs):
            out.queues[job_type] = len(_children(jobs))
    served = {t for c in out.clouds if c.alive for t in c.types}
    out.orphan_types = [t for t in out.queues if t not in served]
    out.in_flight = sum(len(_children(jobs)) for jobs in inbox.values())
    out.settling = len(_children(live.get("outcomes")))
    out.delayed = len(_children(live.get("delayed")))
    out.chains = len(_children(live.get("chains")))
    for dispatcher_id, raw in sorted(_children(live.get("dispatchers")).items()):
        record = _children(raw)
        role = record.get("role") or ("leader" if record.get("leader") else "standby")
        pid = record.get("pid")
        out.dispatchers.append(
            DispatcherRow(
                id=dispatcher_id,
                host=str(record.get("host", "")),
                pid=pid if isinstance(pid, int) else 0,
                heartbeat_age=_age(now, parse_ms(record.get("heartbeat"))),
                role=str(role),
            )
        )
    lease = live.get("lease")
    out.lease = lease if isinstance(lease, dict) else None
    return out
