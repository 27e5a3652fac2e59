"""Fixtures shared by the unit tests (the dispatcher's clock and in-memory database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atmosphere.testing import MemoryDatabase
from tests.unit.dispatcher_kit import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[MemoryDatabase]:
    database = MemoryDatabase(clock=clock.wall)
    yield database
    database.close()
