"""Retention: delete finished job records, their replies, and old analytics minutes."""

from __future__ import annotations

import logging
from typing import Any

from atmosphere.db.base import Database
from atmosphere.jobs import JobState
from atmosphere.paths import Paths
from atmosphere.stats import minute_key
from atmosphere.wiretime import to_ms

_log = logging.getLogger(__name__)

_FINISHED = {JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.DISCARDED.value}


def expired_job_writes(paths: Paths, records: dict[str, Any]) -> dict[str, Any]:
    """Deletes for finished job records and the replies they produced (pure)."""
    writes: dict[str, Any] = {}
    for job_id, record in records.items():
        if not isinstance(record, dict) or record.get("state") not in _FINISHED:
            continue  # a retried job keeps its record until it is done
        writes[paths.jobs(job_id)] = None
        reply_to = record.get("reply_to")
        if isinstance(reply_to, str) and reply_to:
            writes[paths.replies(reply_to, job_id)] = None
        chain = record.get("chain")
        chain_reply_to = record.get("chain_reply_to")
        if isinstance(chain, dict) and isinstance(chain_reply_to, str) and chain_reply_to:
            chain_id = chain.get("id")
            if isinstance(chain_id, str) and chain_id:
                writes[paths.replies(chain_reply_to, chain_id)] = None
    return writes


def collect_jobs(db: Database, paths: Paths, now: float, retention: float, limit: int) -> int:
    """Delete up to ``limit`` job records finished before ``now - retention``; return how many.

    Counts only the records deleted: a page of records that are not finished (yet) is no
    reason to come straight back for more.
    """
    cutoff = to_ms(now - retention)  # the query runs on the stored ms
    # start_at=0 skips records with no ``finished`` (null sorts first in Firebase ordering).
    found = db.query(
        paths.jobs(), order_by="finished", start_at=0, end_at=cutoff, limit_to_first=limit
    )
    writes = expired_job_writes(paths, found)
    if writes:
        db.update("", writes)
    prefix = paths.jobs() + "/"
    return sum(1 for key in writes if key.startswith(prefix))


def collect_stats(db: Database, paths: Paths, now: float, retention: float, limit: int) -> int:
    """Delete up to ``limit`` analytics minutes older than ``now - retention``; return how many."""
    cutoff = minute_key(now - retention)
    found = db.query(paths.stats(), order_by="$key", end_at=cutoff, limit_to_first=limit)
    old = [key for key in found if key < cutoff]
    if old:
        db.update("", {paths.stats(key): None for key in old})
    return len(old)
