"""The security rules we ship for real Firebase: they parse, deny clients, index every query."""

from __future__ import annotations

from pathlib import Path

import atmosphere
from atmosphere.localdb.rules import Rules
from atmosphere.station.jobs_query import INDEXED

RULES = Path(atmosphere.__file__).parent / "rules" / "database.rules.json"


def test_shipped_rules_deny_everyone_but_the_admin_sdk() -> None:
    rules = Rules.parse(RULES.read_text())
    job = {"atmosphere": {"jobs": {"j1": {"type": "t", "state": "queued"}}}}
    assert not rules.can_read(["atmosphere", "jobs"], {"uid": "someone"}, job)
    assert not rules.can_read([], None, job)
    assert not rules.can_write(["atmosphere", "live", "queue", "t", "j2"], {"uid": "x"}, job, job)


def test_shipped_rules_index_every_field_atmosphere_queries_jobs_by() -> None:
    indexed = set(Rules.parse(RULES.read_text()).index_on(["atmosphere", "jobs"]))
    assert "finished" in indexed  # the dispatcher's retention query (scheduler/retention.py)
    assert set(INDEXED) <= indexed  # the Weather Station's job search
