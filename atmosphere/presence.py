"""Presence records: the clouds and dispatchers that are up (``live/clouds``,
``live/dispatchers``), kept fresh by their heartbeats (docs/protocol.md).

Like the job records (``jobs.py``): frozen dataclasses with ``to_json()`` and ``from_json()``,
``from_json`` raising ``InvalidRecord`` on anything malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRecord
from .fields import int_of, number_of, obj_of, pruned
from .wiretime import parse_ms, render_ms


@dataclass(frozen=True)
class CloudInfo:
    """A cloud's registration, kept fresh by its heartbeats."""

    id: str
    name: str
    types: frozenset[str]
    slots: int = 1
    lent: int = 0
    load: float = 0.0
    running: int = 0
    state: str = "up"  # "up" or "draining"
    heartbeat: float | None = None
    started: float | None = None
    host: str = ""
    pid: int = 0
    done: int = 0
    failed: int = 0

    @property
    def capacity(self) -> int:
        """How many jobs it may hold at once, counting slots lent by waiting handlers."""
        return max(0, self.slots + self.lent)

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "name": self.name,
                "types": {t: True for t in sorted(self.types)},
                "slots": self.slots,
                "lent": self.lent or None,
                "load": self.load,
                "running": self.running,
                "state": self.state,
                "heartbeat": render_ms(self.heartbeat),
                "started": render_ms(self.started),
                "host": self.host or None,
                "pid": self.pid or None,
                "done": self.done,
                "failed": self.failed,
            }
        )

    @classmethod
    def from_json(cls, raw: Any, cloud_id: str) -> CloudInfo:
        obj = obj_of(raw, "cloud")
        types = obj.get("types")
        if not isinstance(types, dict):
            raise InvalidRecord("cloud.types is not an object")
        return cls(
            id=cloud_id,
            name=str(obj.get("name") or cloud_id),
            types=frozenset(t for t, on in types.items() if on),
            slots=max(1, int_of(obj, "slots", 1)),
            lent=max(0, int_of(obj, "lent")),
            load=number_of(obj, "load", 0.0) or 0.0,
            running=max(0, int_of(obj, "running")),
            state=str(obj.get("state") or "up"),
            heartbeat=parse_ms(obj.get("heartbeat")),
            started=parse_ms(obj.get("started")),
            host=str(obj.get("host") or ""),
            pid=int_of(obj, "pid"),
            done=int_of(obj, "done"),
            failed=int_of(obj, "failed"),
        )


@dataclass(frozen=True)
class DispatcherInfo:
    """A dispatcher's presence (``live/dispatchers/{id}``), kept fresh by its heartbeats.

    The writers add ``heartbeat`` (and ``started``, the first time) as server timestamps.
    """

    id: str
    host: str = ""
    pid: int = 0
    role: str = "standby"  # "leader" or "standby"
    started: float | None = None
    heartbeat: float | None = None
    epoch: int | None = None  # the epoch a dispatcher without an election acts under
    seq: str | None = None  # the write marker "{run}:{n}" (docs/protocol.md, "Write marker")

    @property
    def leader(self) -> bool:
        return self.role == "leader"

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "host": self.host or None,
                "pid": self.pid or None,
                "role": self.role,
                "started": render_ms(self.started),
                "heartbeat": render_ms(self.heartbeat),
                "epoch": self.epoch,
                "seq": self.seq,
            }
        )

    @classmethod
    def from_json(cls, raw: Any, dispatcher_id: str) -> DispatcherInfo:
        obj = obj_of(raw, "dispatcher")
        role = obj.get("role")
        if role not in ("leader", "standby"):  # older records said leader: true
            role = "leader" if obj.get("leader") is True else "standby"
        seq = obj.get("seq")
        return cls(
            id=dispatcher_id,
            host=str(obj.get("host") or ""),
            pid=int_of(obj, "pid"),
            role=role,
            started=parse_ms(obj.get("started")),
            heartbeat=parse_ms(obj.get("heartbeat")),
            epoch=int_of(obj, "epoch") if obj.get("epoch") is not None else None,
            seq=seq if isinstance(seq, str) else None,
        )
