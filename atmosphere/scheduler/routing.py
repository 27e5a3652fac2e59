"""Least-loaded routing: which cloud, if any, gets a queued job (pure; docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from atmosphere.cloud_state import is_busy


@dataclass(frozen=True)
class CloudLoad:
    """What routing needs to know about one cloud, as the dispatcher sees it."""

    id: str
    types: frozenset[str]
    slots: int = 1
    lent: int = 0
    load: float = 0.0
    held: int = 0  # inbox entries per the dispatcher's own view (not what the cloud claims)
    up: bool = True  # False while draining
    alive: bool = True  # False once its heartbeat is overdue
    # Holds a job that already outlived a cloud, or is being emptied for one: it takes nothing
    # more (see ``runs_alone``).
    closed: bool = False

    @property
    def capacity(self) -> int:
        """How many jobs it may hold at once, counting slots lent by waiting handlers."""
        return max(0, self.slots + self.lent)

    @property
    def busy(self) -> bool:
        """True when it holds as many jobs as it has room for."""
        return is_busy(self.held, self.capacity)

    def holding(self, held: int, *, close: bool = False) -> CloudLoad:
        """The same cloud holding ``held`` jobs (routing makes one per job placed: a copy of
        the fields, not ``dataclasses.replace``'s walk over them nor a frozen ``__init__``,
        which sets each field through ``object.__setattr__``: 1.5 -> 0.6 us)."""
        copy = object.__new__(CloudLoad)
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields["held"] = held
        if close:  # it takes nothing more (routing never reopens a cloud within a round)
            fields["closed"] = True
        return copy

    def eligible_for(self, job_type: str) -> bool:
        """True when it may be given a job of ``job_type`` right now."""
        return (
            job_type in self.types and self.up and self.alive and not self.busy and not self.closed
        )

    def sort_key(self) -> tuple[float, float, str]:
        """Load order: fraction of slots used, then reported OS load, then id."""
        return (self.held / max(1, self.capacity), self.load, self.id)


def runs_alone(deaths: int) -> bool:
    """Whether a job runs on a cloud that holds nothing else: it was on a cloud that died.

    Every job a dead cloud held counts the death (the dispatcher cannot tell which one killed
    it), so a job that kills its cloud would take the jobs beside it down with it, over and over,
    until they too reached ``max_deaths``. Run alone, it dies alone; a job that only stood
    beside it runs alone once and finishes.
    """
    return deaths > 0


def pick_cloud(
    clouds: Iterable[CloudLoad], job_type: str, *, alone: bool = False
) -> CloudLoad | None:
    """The least-loaded cloud that may take a job of ``job_type`` (``alone``: one that holds
    nothing), or None to keep it queued."""
    best: CloudLoad | None = None
    best_key: tuple[float, float, str] | None = None
    for cloud in clouds:
        if not cloud.eligible_for(job_type) or (alone and cloud.held):
            continue
        key = cloud.sort_key()
        if best_key is None or key < best_key:
            best, best_key = cloud, key
    return best


def cloud_to_empty(clouds: Iterable[CloudLoad], job_type: str) -> CloudLoad | None:
    """For a job that runs alone and finds no empty cloud: the least-loaded one that could run
    it, to be given nothing more until it is empty (else a busy fleet would starve the job).

    Never one with handlers waiting on other jobs (``lent``): those jobs may need this very
    cloud, so it might never empty. None: the job waits for a cloud to empty by itself.
    """
    fit = [
        c
        for c in clouds
        if job_type in c.types and c.up and c.alive and not c.closed and c.lent == 0
    ]
    return min(fit, key=CloudLoad.sort_key, default=None)


def closes(holds_one_alone: bool, lent: int) -> bool:
    """Whether a cloud takes nothing more: it holds a job that runs alone, and no handler of
    its waits on another job (one that does lends its slot: the job it waits for may have to
    run right here, or every cloud would be closed around a waiting handler for good)."""
    return holds_one_alone and lent == 0


def has_cloud_for(clouds: Iterable[CloudLoad], job_type: str) -> bool:
    """True when some live cloud is registered for ``job_type`` (busy or not)."""
    return any(job_type in c.types and c.alive for c in clouds)
