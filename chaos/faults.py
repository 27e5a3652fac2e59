"""The fault injector: ``kill -9`` and SIGSTOP/SIGCONT on clouds, the leader and the database.

``plan`` is the pure part (which fault when); ``Injector`` carries it out on a live fleet and
records each fault in the ledger. Killed processes are brought back by the fleet's supervisor.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

from atmosphere.db.base import Database

from .fleet import Fleet
from .ledger import Fault, Ledger
from .procs import Adopted, Child

KINDS = ("kill_cloud", "kill_leader", "kill_db", "freeze_cloud", "freeze_leader", "freeze_db")


def plan(
    kinds: Sequence[str], duration: float, every: float, rng: random.Random
) -> list[tuple[float, str]]:
    """``(seconds from start, kind)`` for a run of ``duration``: one fault every ``every``
    seconds (jittered by a quarter), each kind in turn in a fresh random order per round, so a
    short run still gets every kind."""
    out: list[tuple[float, str]] = []
    if not kinds:
        return out
    at = every
    order: list[str] = []
    while at < duration:
        if not order:
            order = list(kinds)
            rng.shuffle(order)
        out.append((at, order.pop()))
        at += every * rng.uniform(0.75, 1.25)
    return out


class Injector:
    """Runs a fault plan against ``fleet`` on a thread; ``stop()`` ends it and thaws all."""

    def __init__(
        self,
        fleet: Fleet,
        db: Database,
        ledger: Ledger,
        schedule: list[tuple[float, str]],
        rng: random.Random,
    ) -> None:
        self.fleet = fleet
        self.db = db
        self.ledger = ledger
        self.schedule = schedule
        self.rng = rng
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> None:
        """Begin injecting."""
        self._thread.start()

    def stop(self) -> None:
        """Stop injecting (a freeze in progress is ended at once)."""
        self._stop.set()
        self._thread.join(60)
        self.fleet.thaw_all()

    def _run(self) -> None:
        begin = time.monotonic()
        for offset, kind in self.schedule:
            if self._stop.wait(max(0.0, begin + offset - time.monotonic())):
                return
            self.inject(kind)

    def _target(self, kind: str) -> Child | Adopted | None:
        if kind.endswith("_db"):
            return self.fleet.db
        if kind.endswith("_leader"):
            return self.fleet.leader(self.db)
        alive = [c for c in self.fleet.clouds if c.alive() and not c.frozen]
        return self.rng.choice(alive) if alive else None

    def inject(self, kind: str) -> None:
        """Do one fault now and record it (skipped when it has no target right now)."""
        target = self._target(kind)
        if target is None or not target.alive():
            return
        at = time.time()
        outage = self.fleet.timing.outage
        if kind.startswith("kill"):
            target.kill()
            # Its consequences (requeues, a takeover) play out within about one outage.
            self.ledger.add_fault(Fault(kind, target.name, at, at + outage))
            return
        if not target.freeze():
            return
        self._stop.wait(outage)
        target.thaw()
        self.ledger.add_fault(Fault(kind, target.name, at, time.time()))
