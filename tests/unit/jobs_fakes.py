"""Test doubles for unit tests of the maker and the cloud on MemoryDatabase.

``FakeDispatcher`` is a stand-in for the real dispatcher's assign step only (unit tests only):
on every change under ``live/`` it moves queued jobs, oldest first, into the inbox of a cloud
registered for their type that has room (``len(inbox) < slots + lent``), one update per job as
docs/protocol.md describes. It does no chains, retries or timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.paths import Paths
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase

QUIET = Settings(heartbeat_interval=60.0, dead_after=120.0)


class RecordingDatabase(MemoryDatabase):
    """A MemoryDatabase that remembers every update (path and keys) for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[str, dict[str, Any]]] = []

    def update(self, path: str, values: Mapping[str, Any]) -> None:
        super().update(path, values)
        self.updates.append((path, dict(values)))


def assign(db: MemoryDatabase, paths: Paths, cloud_id: str, job_id: str, entry: Any) -> None:
    """Move one job into a cloud's inbox the way the dispatcher does (one update)."""
    job_type = entry.get("type") if isinstance(entry, dict) else None
    writes: dict[str, Any] = {
        paths.rel(paths.inbox(cloud_id, job_id)): (
            {**entry, "assigned": SERVER_TIMESTAMP, "epoch": 1}
            if isinstance(entry, dict)
            else entry
        ),
        f"jobs/{job_id}/state": "assigned",
        f"jobs/{job_id}/cloud": cloud_id,
    }
    if job_type:
        writes[paths.rel(paths.queue(job_type, job_id))] = None
    db.update(paths.root, writes)


class FakeDispatcher:
    """Assigns queued jobs to registered clouds with room, on every change under ``live/``."""

    def __init__(self, db: MemoryDatabase, paths: Paths) -> None:
        self.db = db
        self.paths = paths
        self.assigned: list[tuple[str, str]] = []  # (job id, cloud id)
        self.max_lent = 0
        self._lock = threading.Lock()
        self._listener = db.listen(paths.live, lambda *_: self.pump())

    def pump(self) -> None:
        """Assign every queued job that can be assigned now."""
        with self._lock:
            live = self.db.get(self.paths.live) or {}
            clouds = live.get("clouds") or {}
            inbox = live.get("inbox") or {}
            for info in clouds.values():
                self.max_lent = max(self.max_lent, int(info.get("lent", 0) or 0))
            for job_type, jobs in sorted((live.get("queue") or {}).items()):
                for job_id, entry in sorted(jobs.items()):
                    cloud_id = self._room_for(job_type, clouds, inbox)
                    if cloud_id is None:
                        break
                    assign(self.db, self.paths, cloud_id, job_id, entry)
                    inbox.setdefault(cloud_id, {})[job_id] = entry
                    self.assigned.append((job_id, cloud_id))

    @staticmethod
    def _room_for(job_type: str, clouds: dict[str, Any], inbox: dict[str, Any]) -> str | None:
        for cloud_id, info in sorted(clouds.items()):
            if not isinstance(info, dict) or info.get("state") != "up":
                continue
            if not (info.get("types") or {}).get(job_type):
                continue
            capacity = int(info.get("slots", 1)) + int(info.get("lent", 0) or 0)
            if len(inbox.get(cloud_id) or {}) < capacity:
                return cloud_id
        return None

    def close(self) -> None:
        """Stop listening."""
        self._listener.close()
