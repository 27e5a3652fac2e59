"""One type's queued jobs by id, iterated oldest first without sorting the queue (pure).

Push ids sort by time, so FIFO order is id order. The ids are kept in a sorted list beside
the dict: a new job (the newest id) is an append, a requeued one (an older id) a bisect
insert, and a removal only forgets the dict entry. Removed ids are skipped and dropped as a
walk from the head passes them, or all at once when they outnumber the queued jobs; so an
assignment round costs the jobs it looks at, not the length of the queue.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, MutableMapping
from typing import Any

from atmosphere.jobs import JobSpec

_ABSENT: Any = object()
_SLACK = 1024  # removed ids tolerated in the list beyond the queued ones, before a rebuild


class FifoJobs(MutableMapping[str, JobSpec]):
    """Queued jobs of one type, ``job id -> JobSpec``; iteration is oldest first."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}
        self._ids: list[str] = []  # sorted; from ``_head`` on, each id at most once
        self._head = 0  # ids before it are dropped
        self._layout = 0  # bumped whenever an id moves in the list (insert, rebuild)

    def __getitem__(self, job_id: str) -> JobSpec:
        return self._specs[job_id]

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __setitem__(self, job_id: str, spec: JobSpec) -> None:
        if job_id not in self._specs:
            self._list(job_id)
        self._specs[job_id] = spec

    def __delitem__(self, job_id: str) -> None:
        del self._specs[job_id]
        self._forgot()

    def pop(self, job_id: str, default: Any = _ABSENT) -> Any:
        """Remove a job and return its spec (``default`` if absent, else KeyError): every
        assignment removes one, and the mixin's ``pop`` took two lookups to do it."""
        spec = self._specs.pop(job_id, _ABSENT)
        if spec is _ABSENT:
            if default is _ABSENT:
                raise KeyError(job_id)
            return default
        self._forgot()
        return spec

    def _forgot(self) -> None:
        if len(self._ids) - self._head > 2 * len(self._specs) + _SLACK:
            self._rebuild()

    def __iter__(self) -> Iterator[str]:
        """The queued ids, oldest first; safe while jobs are added and removed."""
        i, layout, last = self._head, self._layout, ""
        while True:
            if layout != self._layout:  # ids moved: find our place again after ``last``
                i, layout = bisect_right(self._ids, last, self._head), self._layout
            i = max(i, self._head)
            if i >= len(self._ids):
                return
            job_id = self._ids[i]
            i += 1
            if job_id in self._specs:
                last = job_id
                yield job_id
            elif i - 1 == self._head:
                self._drop_head()

    def _list(self, job_id: str) -> None:
        ids = self._ids
        if len(ids) == self._head or job_id > ids[-1]:
            ids.append(job_id)  # the common case: the newest job
            return
        at = bisect_left(ids, job_id, self._head)
        if at < len(ids) and ids[at] == job_id:
            return  # removed and added back before a walk dropped it: still in place
        ids.insert(at, job_id)
        self._layout += 1

    def _drop_head(self) -> None:
        self._head += 1
        if self._head > _SLACK and self._head * 2 > len(self._ids):
            del self._ids[: self._head]
            self._head = 0
            self._layout += 1

    def _rebuild(self) -> None:
        specs = self._specs
        self._ids = [job_id for job_id in self._ids[self._head :] if job_id in specs]
        self._head = 0
        self._layout += 1
