"""Run an app the way a user does, on MemoryDatabase: a cloud in this process and the fake
dispatcher's assign step (tests/unit/jobs_fakes.py) standing in for ``atmosphere dispatcher``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from atmosphere import Atmosphere
from atmosphere.settings import Settings
from atmosphere.worker.cloud import Cloud
from tests.unit.jobs_fakes import QUIET, FakeDispatcher, RecordingDatabase


def new_app(name: str = "t", settings: Settings = QUIET) -> Atmosphere:
    """An app on a fresh in-memory database."""
    return Atmosphere(name, settings=settings, database=RecordingDatabase())


@contextmanager
def serving(app: Atmosphere, *, concurrency: int = 1) -> Iterator[Cloud]:
    """A cloud for ``app`` in this process, jobs assigned to it as they are submitted."""
    cloud = Cloud(app, name="c1", concurrency=concurrency, grace=5.0)
    cloud.start()
    dispatcher = FakeDispatcher(app.database, app.paths)  # type: ignore[arg-type]
    try:
        yield cloud
    finally:
        cloud.stop(grace=2.0)
        dispatcher.close()
        app.close()
        app.database.close()
