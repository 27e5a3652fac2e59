"""The original library's entry points, so a port reads like the original (docs/porting.md).

``rain_maker`` submits jobs and ``rain_cloud`` runs them, each after ``init(name, ...)``::

    from atmosphere import rain_maker

    def ready(err):
        if err is not None:
            return print("Could not initialize.", err)
        rain_maker.submit({"type": "remoteFunction", "data": {"msg": "useful"}},
                          lambda error, data: print("RPC completed and returned:", data))

    rain_maker.init("requester", ready)

They are thin: each holds one ``Atmosphere`` app (``.app``) and a cloud runs inside this process
(``.cloud``). The two module-level instances mirror the original's
``require("atmosphere").rainMaker`` / ``.rainCloud`` singletons, the one exception to "no module
state"; build your own ``RainMaker()`` / ``RainCloud()`` where you need more than one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .app import Atmosphere
from .errors import AtmosphereError
from .handle import Callback, Handle
from .settings import Settings
from .task import Handler
from .types import Ticket

if TYPE_CHECKING:
    from .db.base import Database
    from .worker.cloud import Cloud

# init's callback(err): err is None once connected (the original's signature).
InitCallback = Callable[[Exception | None], Any]
Job = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class _Port:
    """What both sides share: the app behind them, submitting, closing."""

    def __init__(self) -> None:
        self._app: Atmosphere | None = None

    @property
    def app(self) -> Atmosphere:
        """The app behind it (after ``init``)."""
        if self._app is None:
            raise AtmosphereError("call init(name, ...) first")
        return self._app

    def submit(self, job: Job, callback: Callback | None = None) -> Handle:
        """Submit a job dict, or a list of them (a chain); ``callback(error, data)`` gets the
        one response. Without a callback it is fire-and-forget, as in the original."""
        return self.app.submit(job, callback)

    def close(self) -> None:
        """Disconnect (pending callbacks get a ResponseTimeout)."""
        app, self._app = self._app, None
        if app is not None:
            app.close()


def _connect(app: Atmosphere, callback: InitCallback | None) -> bool:
    """Connect now, so init reports a database that is not there (to callback, else raised)."""
    try:
        _ = app.database
    except AtmosphereError as exc:
        if callback is None:
            raise
        callback(exc)
        return False
    return True


class RainMaker(_Port):
    """The original ``rainMaker``: ``init(name, callback)``, then ``submit(job, callback)``."""

    def init(
        self,
        name: str,
        callback: InitCallback | None = None,
        *,
        settings: Settings | None = None,
        database: Database | None = None,
    ) -> None:
        """Connect to Atmosphere as ``name``; ``callback(err)`` says whether that worked
        (without a callback, a failure raises).

        Settings come from ``ATMOSPHERE_*`` variables unless given.
        """
        app = Atmosphere(name, settings=settings, database=database)
        if not _connect(app, callback):
            return
        self._app = app
        if callback is not None:
            callback(None)


class RainCloud(_Port):
    """The original ``rainCloud``: ``init(name, handle_jobs, callback)`` registers the handlers
    and runs a cloud in this process; handlers finish with ``done_with(ticket, error, result)``.

    A rain cloud is a rain maker too (``submit``), for jobs that call jobs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cloud: Cloud | None = None
        self._stopped = threading.Event()

    @property
    def cloud(self) -> Cloud:
        """The running cloud (after ``init``)."""
        if self._cloud is None:
            raise AtmosphereError("call rain_cloud.init(name, handle_jobs, ...) first")
        return self._cloud

    def init(
        self,
        name: str,
        handle_jobs: Mapping[str, Handler],
        callback: InitCallback | None = None,
        *,
        settings: Settings | None = None,
        database: Database | None = None,
        concurrency: int = 1,
    ) -> None:
        """Register ``handle_jobs`` (``{job type: fn(ticket, data)}``) and start a cloud for
        them in this process, named ``name``; ``callback(err)`` once it is up (or failed).

        As in the original, each handler finishes only by calling ``done_with``. The cloud
        runs in background threads: ``wait()`` blocks until ``close()`` (or Ctrl-C).
        """
        app = Atmosphere(name, settings=settings, database=database)
        app.handle_jobs(handle_jobs)  # a bad map is the caller's mistake: it raises
        if not _connect(app, callback):
            return
        self._cloud = app.start_cloud(name=name, concurrency=concurrency)
        self._app = app
        self._stopped.clear()
        if callback is not None:
            callback(None)

    def done_with(self, ticket: Ticket, error: Any = None, result: Any = None) -> bool:
        """Finish a job (``error`` None on success; any JSON value or an exception otherwise).
        False when the job had already finished."""
        return self.app.done_with(ticket, error, result)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``close()`` (Ctrl-C closes it); True once closed."""
        try:
            return self._stopped.wait(timeout)
        except KeyboardInterrupt:
            self.close()
            return True

    def close(self) -> None:
        """Drain and stop the cloud (running jobs finish first), then disconnect."""
        cloud, self._cloud = self._cloud, None
        if cloud is not None:
            cloud.stop()
        super().close()
        self._stopped.set()


rain_maker = RainMaker()
rain_cloud = RainCloud()
