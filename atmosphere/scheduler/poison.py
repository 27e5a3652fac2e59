"""Decisions the database refuses: fail their job with the reason, never stall the rest.

The batcher isolates each refused decision (see batcher.py); here each one is logged at ERROR
and its job dead-lettered: ``jobs/{id}`` state ``failed`` with the database's reason, the caller
(the chain's, for a step) answered once, and nothing left in ``live/`` to decide again. If the
database refuses even that, the job is set aside until the dispatcher restarts, with an ERROR
saying so: deciding it again could only fail again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from atmosphere.db.base import Database
from atmosphere.errors import DatabaseError, RequestRefused
from atmosphere.jobs import ChainState, JobSpec
from atmosphere.paths import Paths
from atmosphere.scheduler import settlement
from atmosphere.scheduler.batcher import Refused

if TYPE_CHECKING:
    from atmosphere.scheduler.desk import Count

_log = logging.getLogger(__name__)

# Jobs set aside at most; past it the oldest is forgotten (and may be tried, and refused, again).
SET_ASIDE_MAX = 10_000


class Fallback(NamedTuple):
    """What to write instead if the database refuses one decision about a job (a NamedTuple,
    not a frozen dataclass: one per decision)."""

    job_id: str
    what: str  # "to settle its outcome": completes "the database refused the write ..."
    writes: Callable[[dict[str, Any]], dict[str, Any]]  # the error -> the writes ending it


def fail_job(
    paths: Paths, spec: JobSpec, chain: ChainState | None, what: str, *, replied: bool = False
) -> Fallback:
    """Refused: dead-letter ``spec`` (``chain`` as it was when the decision was made)."""
    return Fallback(
        spec.id,
        what,
        lambda error: settlement.dead_letter(paths, spec, chain, error, replied=replied),
    )


def drop_outcome(paths: Paths, job_id: str) -> Fallback:
    """Refused: just drop the outcome (a late one; the job itself was settled before)."""
    return Fallback(job_id, "to record a late outcome", lambda _: {paths.outcomes(job_id): None})


def isolate(
    refused: Sequence[Refused], db: Database, poisoned: dict[str, None], count: Count
) -> None:
    """Log each refused decision and write its fallback; set aside (in ``poisoned``) the jobs
    it cannot end."""
    for item in refused:
        count("refused")
        fallback = item.group.tag if isinstance(item.group.tag, Fallback) else None
        if fallback is None:
            _log.error(
                "the database refused a write of %d path(s) (%s ...); dropped it: %s",
                len(item.group.writes),
                next(iter(item.group.writes)),
                item.error,
            )
            continue
        _log.error(
            "job %s: the database refused the write %s; failing the job: %s",
            fallback.job_id,
            fallback.what,
            item.error,
        )
        _write_fallback(db, fallback, item.error, poisoned, count)


def _write_fallback(
    db: Database, fallback: Fallback, cause: RequestRefused, poisoned: dict[str, None], count: Count
) -> None:
    try:
        db.update("", fallback.writes(settlement.refused_error(fallback.what, cause)))
    except RequestRefused as exc:
        set_aside(poisoned, fallback.job_id)
        _log.error(
            "job %s: the database refused its dead letter too (%s); ignoring the job until "
            "the dispatcher restarts (inspect jobs/%s and live/ by hand)",
            fallback.job_id,
            exc,
            fallback.job_id,
        )
    except DatabaseError as exc:  # the resync that follows decides it again
        _log.warning("job %s: could not write its dead letter: %s", fallback.job_id, exc)
    else:
        count("dead_lettered")


def set_aside(poisoned: dict[str, None], job_id: str) -> None:
    """Remember ``job_id`` as not to be decided again, within ``SET_ASIDE_MAX``."""
    poisoned[job_id] = None
    while len(poisoned) > SET_ASIDE_MAX:
        del poisoned[next(iter(poisoned))]
