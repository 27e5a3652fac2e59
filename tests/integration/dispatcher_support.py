"""Real-process helpers for dispatcher tests: simulated clouds, a maker (the dispatcher as a
process, ``DispatcherProcess``, lives in ``devkit.procs`` and is re-exported here).

``SimCloud`` follows docs/protocol.md with the real SDK (through ``FirebaseDatabase``): it
registers, heartbeats, mirrors its inbox, "runs" each assignment on one of its slots and writes
the completion PATCH. It records the most jobs its inbox ever held, so tests can check that the
dispatcher never overfills a cloud.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP, increment
from atmosphere.db.client import FirebaseDatabase
from atmosphere.db.mirror import apply_event
from atmosphere.jobs import payload
from atmosphere.paths import Paths
from devkit.procs import DISPATCHER_READY as READY
from devkit.procs import DispatcherProcess
from tests.support import wait_until as wait_until  # one poller for every test

__all__ = [
    "READY",
    "DispatcherProcess",
    "SimCloud",
    "states",
    "submit",
    "wait_until",
]


class SimCloud:
    """A minimal cloud that speaks the protocol: result = {"echo": data, "cloud": id}."""

    def __init__(
        self,
        db_url: str,
        root: str,
        cloud_id: str,
        types: Sequence[str],
        *,
        slots: int = 1,
        work: float = 0.0,
        beat: float = 0.25,
        handler: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.db = FirebaseDatabase(db_url)
        self.paths = Paths(root)
        self.id = cloud_id
        self.slots = slots
        self.work = work
        self.handler = handler
        # Noted once the completion's write returns, which may be after the record shows it.
        self.ran: list[str] = []
        self.max_held = 0
        self.frozen = False  # True: stop heartbeating and completing (a hung or dead cloud)
        self._tree: Any = None
        self._taken: set[tuple[str, int]] = set()
        self._jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.db.set(
            self.paths.clouds(cloud_id),
            {
                "name": cloud_id,
                "types": {t: True for t in types},
                "slots": slots,
                "load": 0.0,
                "running": 0,
                "state": "up",
                "heartbeat": SERVER_TIMESTAMP,
                "done": 0,
                "failed": 0,
            },
        )
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(slots)]
        self._threads.append(threading.Thread(target=self._beat, daemon=True, args=(beat,)))
        for thread in self._threads:
            thread.start()
        self._listener = self.db.listen(self.paths.inbox(cloud_id), self._on_event)

    def _on_event(self, kind: str, path: str, data: Any) -> None:
        with self._lock:
            self._tree = apply_event(self._tree, kind, path, data)
            entries = self._tree if isinstance(self._tree, dict) else {}
            self.max_held = max(self.max_held, len(entries))
            for job_id, spec in entries.items():
                key = (job_id, int(spec.get("attempt", 1)) if isinstance(spec, dict) else 0)
                if key not in self._taken and isinstance(spec, dict):
                    self._taken.add(key)
                    self._jobs.put({**spec, "id": job_id})

    def _work(self) -> None:
        while True:
            spec = self._jobs.get()
            if spec is None or self._stop.is_set():
                return
            if self.work:
                self._stop.wait(self.work)
            if self.frozen or self._stop.is_set():
                continue
            self._complete(spec)

    def _complete(self, spec: dict[str, Any]) -> None:
        job_id = spec["id"]
        try:
            result = (
                self.handler(spec)
                if self.handler
                else {"echo": payload(spec, "data"), "cloud": self.id}
            )
            ok, error = True, None
        except Exception as exc:  # the handler's failure is the job's outcome
            result, ok, error = None, False, {"kind": "JobFailed", "message": str(exc)}
        record = self.paths.jobs(job_id)
        attempt = int(spec.get("attempt", 1))
        # As the real cloud judges it: a failure with attempts left asks for a retry.
        retry = not ok and attempt <= int(spec.get("retries", 0))
        outcome: dict[str, Any] = {
            "cloud": self.id,
            "attempt": attempt,
            "ok": ok,
            "finished": SERVER_TIMESTAMP,
        }
        if retry:
            outcome["retry"] = True
        writes: dict[str, Any] = {
            self.paths.inbox(self.id, job_id): None,
            f"{record}/state": "succeeded" if ok else "retrying" if retry else "failed",
            f"{record}/finished": SERVER_TIMESTAMP,
            f"{record}/cloud": self.id,
            f"{self.paths.clouds(self.id)}/done": increment(1),
        }
        if ok:
            outcome["result"] = result
            writes[f"{record}/result"] = result
        else:
            outcome["error"] = error
            writes[f"{record}/error"] = error
        reply_to = spec.get("reply_to")
        if reply_to and not spec.get("chain") and not retry:
            outcome["replied"] = True
            reply = {"ok": ok, "job": job_id, "result": result, "error": error}
            writes[self.paths.replies(reply_to, job_id)] = {
                k: v for k, v in reply.items() if v is not None
            }
        writes[self.paths.outcomes(job_id)] = outcome
        self.db.update("", writes)
        self.ran.append(job_id)

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            if not self.frozen:
                try:
                    self.db.set(f"{self.paths.clouds(self.id)}/heartbeat", SERVER_TIMESTAMP)
                except Exception:  # the test is ending or the server is gone
                    return

    def close(self) -> None:
        self._stop.set()
        for _ in range(self.slots):
            self._jobs.put(None)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)
        self.db.close()


def submit(
    db: FirebaseDatabase,
    paths: Paths,
    job_type: str,
    data: Any = None,
    reply_to: str | None = None,
    **extra: Any,
) -> str:
    """What a maker writes: the job record and its queue entry, in one PATCH."""
    job_id = db.new_id()
    spec = {
        "id": job_id,
        "type": job_type,
        "name": job_id,
        "data": data,
        "timeout": 30,
        "submitted": SERVER_TIMESTAMP,
        "attempt": 1,
        **extra,
    }
    if reply_to:
        spec["reply_to"] = reply_to
    spec = {k: v for k, v in spec.items() if v is not None}
    db.update(
        "", {paths.jobs(job_id): {**spec, "state": "queued"}, paths.queue(job_type, job_id): spec}
    )
    return job_id


def states(db: FirebaseDatabase, paths: Paths) -> dict[str, str]:
    """job id -> state, from the job records."""
    jobs = db.get(paths.jobs()) or {}
    return {k: v.get("state", "?") for k, v in jobs.items() if isinstance(v, dict)}
