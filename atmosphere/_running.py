"""Which job the current thread is running, so a maker inside a handler can lend its slot.

A cloud sets ``current_job`` in each worker thread; ``Handle.get()`` reads it to lend the
slot while it blocks (recursion never deadlocks) and submissions read it to fill ``parent``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol


class Pending(Protocol):
    """A submitted sub-job's handle, as far as its parent needs to know."""

    def done(self) -> bool: ...


@dataclass(slots=True)
class RunningJob:
    """The job a worker thread is running, how to lend its slot, and what it submitted.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, and a
    cloud makes one per job; nothing changes its fields.
    """

    job_id: str
    lend: Callable[[], AbstractContextManager[None]]
    children: list[Pending] = field(default_factory=list)

    def waits_on_children(self) -> bool:
        """True while a sub-job it submitted (with a response tracked) has not answered."""
        return any(not child.done() for child in self.children)


current_job: ContextVar[RunningJob | None] = ContextVar("atmosphere_current_job", default=None)
