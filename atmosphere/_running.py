"""Which job the current thread is running, so a maker inside a handler can lend its slot.

A cloud sets ``current_job`` in each worker thread; ``Handle.get()`` reads it to lend the
slot while it blocks (recursion never deadlocks) and submissions read it to fill ``parent``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RunningJob:
    """The job a worker thread is running and how to lend its slot while waiting."""

    job_id: str
    lend: Callable[[], AbstractContextManager[None]]


current_job: ContextVar[RunningJob | None] = ContextVar("atmosphere_current_job", default=None)
