"""Paging and searching ``jobs/`` with queries only (never a get of the whole history)."""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere.station.jobs_query import MAX_DEPTH, JobFilter, chain_jobs, child_jobs, search_jobs
from atmosphere.testing import MemoryDatabase
from tests.unit.station_helpers import PATHS

STATES = ("succeeded", "failed", "succeeded", "discarded")


class CountingDatabase(MemoryDatabase):
    """Refuses to read the whole history and records how many records each query returned."""

    def __init__(self) -> None:
        super().__init__()
        self.returned: list[int] = []

    def get(self, path: str, *, shallow: bool = False) -> Any:
        assert path.rstrip("/") != PATHS.jobs(), "the station read all of jobs/"
        return super().get(path, shallow=shallow)

    def query(self, path: str, **kwargs: Any) -> dict[str, Any]:
        assert kwargs.get("limit_to_first") or kwargs.get("limit_to_last"), "unbounded query"
        out = super().query(path, **kwargs)
        self.returned.append(len(out))
        return out


@pytest.fixture(scope="module")
def big() -> CountingDatabase:
    """5,000 finished jobs with ordered ids (enough to prove paging; 100k is the browser's job)."""
    db = CountingDatabase()
    updates = {}
    for i in range(5_000):
        job_id = f"j{i:06d}"
        updates[PATHS.jobs(job_id)] = {
            "type": "even" if i % 2 == 0 else "odd",
            "name": f"n{i % 7}",
            "state": STATES[i % 4],
            "submitted": i,
        }
    db.update("", updates)
    return db


def walk(db: CountingDatabase, flt: JobFilter, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        page = search_jobs(db, PATHS, flt, cursor, limit)
        assert len(page["jobs"]) <= limit
        ids += [j["id"] for j in page["jobs"]]
        if not page["next"]:
            return ids
        cursor = page["next"]


def test_unfiltered_paging_visits_every_job_once_newest_first(big: CountingDatabase) -> None:
    big.returned.clear()
    ids = walk(big, JobFilter(), limit=200)
    assert ids == [f"j{i:06d}" for i in range(4_999, -1, -1)]
    assert max(big.returned) <= 202  # each query fetched one page (plus cursor and look-ahead)


def test_first_page_and_cursor(big: CountingDatabase) -> None:
    page = search_jobs(big, PATHS, JobFilter(), "", 3)
    assert [j["id"] for j in page["jobs"]] == ["j004999", "j004998", "j004997"]
    assert page["next"] == "k:j004997"
    page = search_jobs(big, PATHS, JobFilter(), page["next"], 2)
    assert [j["id"] for j in page["jobs"]] == ["j004996", "j004995"]


def test_single_filter_pages_by_offset(big: CountingDatabase) -> None:
    ids = walk(big, JobFilter(state="failed"), limit=100)
    assert len(ids) == 1_250 and len(set(ids)) == 1_250
    assert ids[0] == "j004997" and ids == sorted(ids, reverse=True)


def test_combined_filters_apply_every_field(big: CountingDatabase) -> None:
    page = search_jobs(big, PATHS, JobFilter(type="odd", state="failed", name="n3"), "", 5)
    assert page["jobs"]
    for job in page["jobs"]:
        assert (job["type"], job["state"], job["name"]) == ("odd", "failed", "n3")


def test_filtered_search_depth_is_bounded(big: CountingDatabase) -> None:
    big.returned.clear()
    search_jobs(big, PATHS, JobFilter(type="odd", name="n1"), "o:999999", 50)
    assert max(big.returned) <= MAX_DEPTH


def test_search_by_id(big: CountingDatabase) -> None:
    assert [j["id"] for j in search_jobs(big, PATHS, JobFilter(job_id="j000042"))["jobs"]] == [
        "j000042"
    ]
    assert search_jobs(big, PATHS, JobFilter(job_id="nope"))["jobs"] == []
    assert search_jobs(big, PATHS, JobFilter(job_id="j000042", state="failed"))["jobs"] == []


def test_chain_and_children() -> None:
    db = CountingDatabase()
    db.update(
        "",
        {
            PATHS.jobs("C-0"): {"type": "a", "state": "succeeded", "chain": {"id": "C", "step": 0}},
            PATHS.jobs("C-1"): {"type": "b", "state": "queued", "chain": {"id": "C", "step": 1}},
            PATHS.jobs("C-x"): {"type": "z", "state": "queued"},  # a key in range, not of the chain
            PATHS.jobs("D-0"): {"type": "a", "chain": {"id": "D", "step": 0}},
            PATHS.jobs("k1"): {"type": "sub", "parent": "C-1"},
            PATHS.jobs("k2"): {"type": "sub", "parent": "other"},
        },
    )
    assert [(s["id"], s["step"]) for s in chain_jobs(db, PATHS, "C")] == [("C-0", 0), ("C-1", 1)]
    assert [j["id"] for j in child_jobs(db, PATHS, "C-1")] == ["k1"]
