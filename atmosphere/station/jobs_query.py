"""Searching and paging ``jobs/`` with database queries: never a ``get()`` of all the history.

Unfiltered lists page by key (push ids sort by submission time) with a cursor, so page 1,000 of
100,000 jobs costs the same as page 1. Filtered searches use the index of one field (name, then
state, then type: the likely most selective first) with ``equal_to`` and a limit, apply the
other filters in memory, and page by offset up to ``MAX_DEPTH`` matches deep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atmosphere.db.base import Database
from atmosphere.db.tree import key_order
from atmosphere.errors import DatabaseError
from atmosphere.paths import Paths

from .views import job_row

MAX_LIMIT = 200
# Filtered searches look at most this many of the newest matches of their indexed field.
MAX_DEPTH = 5_000
INDEXED = ("name", "state", "type")


@dataclass(frozen=True)
class JobFilter:
    """What the jobs view searches for; empty strings mean "any"."""

    job_id: str = ""
    type: str = ""
    name: str = ""
    state: str = ""

    def fields(self) -> dict[str, str]:
        """The record fields filtered on, in index preference order."""
        values = {"name": self.name, "state": self.state, "type": self.type}
        return {k: v for k, v in values.items() if v}

    def matches(self, raw: Any) -> bool:
        """True when a job record has every filtered field value."""
        job = raw if isinstance(raw, dict) else {}
        return all(job.get(k) == v for k, v in self.fields().items())


def newest_first(page: dict[str, Any]) -> list[tuple[str, Any]]:
    """Query results sorted newest first (REST results come back unordered)."""
    return sorted(page.items(), key=lambda kv: key_order(kv[0]), reverse=True)


def clamp_limit(limit: int) -> int:
    """A page size between 1 and MAX_LIMIT."""
    return max(1, min(MAX_LIMIT, limit))


def search_jobs(
    db: Database, paths: Paths, flt: JobFilter, cursor: str = "", limit: int = 50
) -> dict[str, Any]:
    """One page of job rows, newest first, and the cursor of the next page (None at the end)."""
    limit = clamp_limit(limit)
    if flt.job_id:
        raw = db.get(paths.jobs(flt.job_id))
        rows = [job_row(flt.job_id, raw)] if isinstance(raw, dict) and flt.matches(raw) else []
        return {"jobs": rows, "next": None, "truncated": False}
    if not flt.fields():
        return _page_by_key(db, paths, cursor, limit)
    return _page_by_index(db, paths, flt, cursor, limit)


def _page_by_key(db: Database, paths: Paths, cursor: str, limit: int) -> dict[str, Any]:
    before = cursor[2:] if cursor.startswith("k:") else None
    # end_at is inclusive, so ask for one more than needed to skip the cursor itself, and one
    # more again to know whether another page exists.
    page = db.query(
        paths.jobs(), order_by="$key", end_at=before, limit_to_last=limit + (2 if before else 1)
    )
    items = [(k, v) for k, v in newest_first(page) if k != before][: limit + 1]
    rows = [job_row(k, v) for k, v in items[:limit]]
    more = len(items) > limit
    return {
        "jobs": rows,
        "next": f"k:{rows[-1]['id']}" if more and rows else None,
        "truncated": False,
    }


def _page_by_index(
    db: Database, paths: Paths, flt: JobFilter, cursor: str, limit: int
) -> dict[str, Any]:
    offset = _offset(cursor)
    fields = flt.fields()
    field = next(f for f in INDEXED if f in fields)
    # With one filter every indexed match is a hit, so the query can stop right after the page.
    depth = offset + limit + 1 if len(fields) == 1 else MAX_DEPTH
    depth = min(depth, MAX_DEPTH)
    page = db.query(paths.jobs(), order_by=field, equal_to=fields[field], limit_to_last=depth)
    hits = [(k, v) for k, v in newest_first(page) if flt.matches(v)]
    chunk = hits[offset : offset + limit]
    more = len(hits) > offset + limit
    return {
        "jobs": [job_row(k, v) for k, v in chunk],
        "next": f"o:{offset + limit}" if more else None,
        "truncated": len(page) >= MAX_DEPTH,
    }


def _offset(cursor: str) -> int:
    if cursor.startswith("o:") and cursor[2:].isdigit():
        return min(int(cursor[2:]), MAX_DEPTH)
    return 0


def chain_jobs(db: Database, paths: Paths, chain_id: str) -> list[dict[str, Any]]:
    """The job rows of a chain's steps (step ids are ``{chainId}-{k}``), in step order."""
    page = db.query(
        paths.jobs(),
        order_by="$key",
        start_at=chain_id,
        end_at=chain_id + "-\uf8ff",
        limit_to_first=MAX_LIMIT,
    )
    steps = []
    for job_id, raw in page.items():
        chain = raw.get("chain") if isinstance(raw, dict) else None
        if isinstance(chain, dict) and chain.get("id") == chain_id:
            steps.append((chain.get("step", 0), job_row(job_id, raw)))
    steps.sort(key=lambda s: (s[0] if isinstance(s[0], int) else 0, s[1]["id"]))
    return [row | {"step": step} for step, row in steps]


def child_jobs(db: Database, paths: Paths, parent_id: str) -> list[dict[str, Any]]:
    """Jobs submitted from the handler of ``parent_id`` (needs an index on ``parent``)."""
    try:
        page = db.query(
            paths.jobs(), order_by="parent", equal_to=parent_id, limit_to_first=MAX_LIMIT
        )
    except DatabaseError:
        return []  # a real Firebase without ".indexOn": "parent" refuses the query
    return [job_row(k, v) for k, v in sorted(page.items(), key=lambda kv: key_order(kv[0]))]
