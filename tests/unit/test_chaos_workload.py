"""The chaos harness's submitting side (chaos/workload.py) on the in-memory database."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from atmosphere.errors import DatabaseError
from atmosphere.settings import Settings
from atmosphere.testing import MemoryDatabase
from atmosphere.types import JSON
from chaos import workload
from chaos.ledger import Ledger
from chaos.tasks import make_app
from tests.support import wait_until


class DownFor(MemoryDatabase):
    """Refuses the first ``failures`` writes, as a database being restarted would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def update(self, path: str, values: Mapping[str, JSON]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DatabaseError("the database is unreachable (test)")
        super().update(path, values)


def test_a_poison_refused_while_the_database_is_down_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short CI run once sent no poison_deep at all (both refused during a database restart)
    # and failed for a poison it never judged.
    monkeypatch.setattr(workload, "REFUSED_PAUSE", 0.01)
    db = DownFor(failures=3)
    app = make_app(Settings(), database=db)
    ledger = Ledger()
    work = workload.Workload(
        app,
        ledger,
        random.Random(1),
        threads=0,
        poison_every=0.01,
        poisons=["poison_key", "poison_huge"],
    )
    work.start()
    try:
        wait_until(lambda: ledger.sent, timeout=10, what="the poison to be sent")
    finally:
        work.stop(timeout=5)
        app.close()
    # Then the refused kind is sent before the next kind is tried
    assert ledger.refused == {"poison_key": 3}
    assert ledger.sent[0].kind == "poison_key"
