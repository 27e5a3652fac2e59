"""Fixtures shared by the unit tests (the dispatcher's clock and in-memory database, and the
embedded server's core in process)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from atmosphere.localdb.service import Config, LocalDb
from atmosphere.localdb.store import Store
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


@pytest.fixture(scope="module")
def localdb() -> Iterator[LocalDb]:
    """The embedded server's core, in process (``handle(method, path, ...)``, no sockets)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        store.open()
        yield LocalDb(store, Config())
        store.close()
