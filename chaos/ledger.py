"""What was sent, what came back, what ran and what was done to the fleet: the raw record.

The harness's threads write here while the suite runs; ``checks.py`` judges it afterwards.
Times are wall-clock seconds (``time.time()``) so they compare with the clouds' exec logs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmosphere.errors import JobError


@dataclass(frozen=True)
class Sent:
    """One submission: its reply id (``key``), what kind of work, and when."""

    key: str
    kind: str
    at: float
    tracked: bool = True
    proof: str | None = None  # the job id whose execution shows an untracked submission ran


@dataclass(frozen=True)
class Answer:
    """The one response a handle got."""

    key: str
    at: float
    ok: bool
    error: str = ""  # the exception class (JobFailed, JobTimeout, ...)
    error_type: str = ""  # the remote type (InvalidResult, ...)
    message: str = ""
    mark: str = ""  # the result's ``run`` token: which execution answered


@dataclass(frozen=True)
class Execution:
    """One line of a cloud's exec log: a handler started on ``job_id``."""

    at: float
    job_id: str
    type: str
    pid: int


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` on ``target`` from ``at`` until its effect is over."""

    kind: str
    target: str
    at: float
    until: float


def answer_from(key: str, error: JobError | None, result: Any = None) -> Answer:
    """The Answer for a handle's ``(error, result)``, noted now."""
    when = time.time()
    if error is None:
        return Answer(key, when, ok=True, mark=run_mark(result))
    return Answer(
        key,
        when,
        ok=False,
        error=type(error).__name__,
        error_type=error.error_type or "",
        message=error.message,
    )


@dataclass
class Ledger:
    """The thread-safe record of one suite run."""

    sent: list[Sent] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # kind -> submits that raised
    refusals: list[str] = field(default_factory=list)  # a few of their messages
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_sent(self, sent: Sent) -> None:
        """Record a submission that the database accepted."""
        with self._lock:
            self.sent.append(sent)

    def add_answer(self, answer: Answer) -> None:
        """Record a response."""
        with self._lock:
            self.answers.append(answer)

    def add_refused(self, kind: str, message: str) -> None:
        """Record a submission that raised (the database was down, say)."""
        with self._lock:
            self.refused[kind] = self.refused.get(kind, 0) + 1
            if len(self.refusals) < 5:
                self.refusals.append(message[:200])

    def add_fault(self, fault: Fault) -> None:
        """Record an injected fault."""
        with self._lock:
            self.faults.append(fault)

    def outstanding(self) -> int:
        """Tracked submissions still without a response."""
        with self._lock:
            answered = {a.key for a in self.answers}
            return sum(1 for s in self.sent if s.tracked and s.key not in answered)


def read_executions(directory: Path) -> list[Execution]:
    """Every execution the clouds logged in ``directory`` (torn lines are skipped)."""
    out: list[Execution] = []
    for path in sorted(directory.glob("exec-*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue
            try:
                out.append(Execution(float(parts[0]), parts[1], parts[2], int(parts[3])))
            except ValueError:
                continue
    out.sort(key=lambda e: e.at)
    return out


def run_mark(result: Any) -> str:
    """The ``run`` token the chaos tasks put in every ordinary result ("" if none)."""
    mark = result.get("run") if isinstance(result, dict) else None
    return mark if isinstance(mark, str) else ""
