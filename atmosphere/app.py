"""The app object: register tasks (``@app.task``), submit jobs and chains, finish with done_with.

``Atmosphere`` is both sides at once, as in the original library: a cloud process runs the
tasks registered on it (``atmosphere cloud myapp.tasks``) and any process, clouds included,
submits jobs through it (``task.delay(data)``, ``chain(...).submit()``,
``app.submit(job, callback)``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, overload

from ._running import current_job
from .db.base import Database
from .errors import AtmosphereError, InvalidJob
from .handle import Callback, Handle
from .jobs import check_key
from .maker import Maker, Submission
from .paths import Paths
from .schedules import Schedule, ScheduleBook, make_schedule, store_schedule, task_job
from .settings import Settings
from .task import Handler, Seconds, Task, decorator
from .types import JSON, Ticket
from .types import LATER as LATER
from .validate import (
    JobRequest,
    check_chain,
    check_request,
    parse_job,
    plan_chain,
    plan_job,
)
from .validate import chain_writes as _chain_writes
from .validate import job_writes as _job_writes

if TYPE_CHECKING:
    from .worker.cloud import Cloud

_log = logging.getLogger(__name__)


class Runtime(Protocol):
    """What an app needs of the cloud running its tasks: where ``done_with`` goes."""

    def done_with(self, ticket: Ticket, error: Any, result: JSON) -> bool: ...


class Atmosphere:
    """An Atmosphere app: the tasks a cloud runs, and the client that submits jobs."""

    def __init__(
        self,
        name: str = "atmosphere",
        *,
        settings: Settings | None = None,
        database: Database | None = None,
    ) -> None:
        self.name = name
        self.tasks: dict[str, Task] = {}
        self._settings = settings
        self._database = database
        self._owns_database = False
        self._maker: Maker | None = None
        self._runtime: Runtime | None = None
        self._lock = threading.RLock()
        self._schedules = ScheduleBook()  # @periodic definitions, stored when the cloud starts

    def __repr__(self) -> str:
        return f"<Atmosphere {self.name!r} tasks={sorted(self.tasks)}>"

    # -- configuration -----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings given, or (at first use) the ones from ATMOSPHERE_* variables."""
        with self._lock:
            if self._settings is None:
                self._settings = Settings.from_env()
            return self._settings

    @property
    def paths(self) -> Paths:
        """Where everything lives in the database."""
        return Paths(self.settings.root)

    @property
    def database(self) -> Database:
        """The database given, or (at first use) a connection made from the settings."""
        settings = self.settings
        with self._lock:
            if self._database is None:
                from .db.connect import connect

                # A short wait lets a script start alongside `atmosphere dispatcher`.
                self._database = connect(settings, wait=5.0)
                self._owns_database = True
            return self._database

    def configure(
        self, *, settings: Settings | None = None, database: Database | None = None
    ) -> None:
        """Replace the settings and/or database before first use (the CLI's --db-url does)."""
        with self._lock:
            if self._maker is not None:
                raise AtmosphereError("configure() must come before the first submission")
            if settings is not None:
                self._settings = settings
            if database is not None:
                self._database = database

    @property
    def maker(self) -> Maker:
        """This process's maker for this app (made at first use)."""
        database = self.database
        with self._lock:
            if self._maker is None:
                settings = self.settings
                self._maker = Maker(database, Paths(settings.root), maker_id=settings.db_uid)
            return self._maker

    # -- tasks -------------------------------------------------------------------------------

    @overload
    def task(self, job_type: Handler, /) -> Task: ...

    @overload
    def task(
        self,
        job_type: str | None = None,
        *,
        timeout: Seconds | None = None,
        retries: int = 0,
        retry_backoff: Seconds = 1.0,
        retry_backoff_max: Seconds = 300.0,
    ) -> Callable[[Handler], Task]: ...

    def task(
        self,
        job_type: str | Handler | None = None,
        *,
        timeout: Seconds | None = None,
        retries: int = 0,
        retry_backoff: Seconds = 1.0,
        retry_backoff_max: Seconds = 300.0,
    ) -> Task | Callable[[Handler], Task]:
        """``@app.task("syncUser", timeout=30, retries=3)``: register a handler for a job type.

        Bare ``@app.task`` and ``@app.task()`` register the function under its own name, as
        Celery does. The handler is called as ``fn(ticket, data)`` and finishes by returning
        a JSON value, by raising (``raise Retry(delay=...)`` asks for another attempt), or by
        returning ``LATER`` and calling ``app.done_with(ticket, error, result)`` from any
        thread. ``timeout`` and ``retries`` are the defaults for jobs submitted through the Task.
        """
        return decorator(
            self._add,
            job_type,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
        )

    def handle_jobs(self, handlers: Mapping[str, Handler]) -> dict[str, Task]:
        """The original registration form, ``{job type: fn}`` (the original's ``handleJobs``).

        Each ``fn(ticket, data)`` finishes only through ``app.done_with(ticket, error,
        result)``, at once or later from any thread, exactly as in the original: what it
        returns is ignored (no ``LATER`` needed); raising fails the job.

        Raises:
            InvalidJob: a type is not a valid key.
            AtmosphereError: a type is already registered.
        """
        added = {}
        for job_type, fn in handlers.items():
            task = Task(None, check_key(job_type, "task type"), fn, done_with_only=True)
            added[job_type] = self._add(task)
        return added

    def include(self, *sources: ModuleType | str | Task) -> None:
        """Register tasks defined with the module-level ``@task`` (Celery's ``shared_task``):
        every such task of a module (given as a module or its import name; tasks it imported
        from apps are left alone), or single tasks.

        A task already bound to another app is registered here as a copy bound to this one.

        Raises:
            AtmosphereError: a type is already registered here by another task.
        """
        for source in sources:
            if isinstance(source, str):
                source = importlib.import_module(source)
            if isinstance(source, Task):
                found = [source]
            else:
                found = [v for v in vars(source).values() if isinstance(v, Task) and v.shared]
            for task in found:
                if task.app is None or task.app is self:
                    self._add(task)
                else:
                    self._add(task.copy())

    def _add(self, task: Task) -> Task:
        registered = self.tasks.get(task.type)
        if registered is task:
            return task
        if registered is not None:
            raise AtmosphereError(f"a task for type {task.type!r} is already registered")
        task.app = self
        self.tasks[task.type] = task
        return task

    # -- periodic schedules (docs/schedules.md) -------------------------------------------------

    def periodic(
        self,
        name: str,
        *,
        cron: str | None = None,
        every: Seconds | None = None,
        tz: str = "UTC",
        data: JSON = None,
        misfire: str = "skip",
        catch_up_max: int = 10,
        grace: Seconds = 60.0,
    ) -> Callable[[Task], Task]:
        """``@app.periodic("nightly-sync", cron="0 3 * * *", tz="Europe/Berlin")`` above
        ``@app.task(...)``: the leading dispatcher submits the task's job on that schedule.

        Stored in the database when this app's cloud starts, so the dispatcher needs none of
        this code. Arguments as for ``schedule()``; ``data`` is each tick's job data.

        Raises:
            InvalidSchedule: a bad name, cron expression, time zone, interval or policy.
        """

        def register(task: Task) -> Task:
            job = task_job(task, data)
            self._schedules.add(
                make_schedule(
                    name,
                    job,
                    cron=cron,
                    every=every,
                    tz=tz,
                    misfire=misfire,
                    catch_up_max=catch_up_max,
                    grace=grace,
                )
            )
            return task

        return register

    def schedule(
        self,
        name: str,
        job: str | Mapping[str, Any],
        *,
        cron: str | None = None,
        every: Seconds | None = None,
        tz: str = "UTC",
        misfire: str = "skip",
        catch_up_max: int = 10,
        grace: Seconds = 60.0,
    ) -> Schedule:
        """Define (or redefine) a periodic schedule in the database now; pause state and
        history are kept.

        Args:
            name: the schedule's key (letters, digits, ``_`` and ``-``).
            job: a job type, or ``{type, name, data, timeout, retries}``.
            cron: a 5-field crontab expression, matched on the wall clock of ``tz``.
            every: an interval (seconds or a timedelta, at least 1 s); exactly one of the two.
            tz: an IANA time zone for ``cron``.
            misfire: for ticks missed while no dispatcher ran: ``skip`` (fire only ticks at
                most ``grace`` late), ``run_once`` or ``catch_up`` (at most ``catch_up_max``).

        Raises:
            InvalidSchedule: the definition is malformed (the message says how).
        """
        defined = make_schedule(
            name,
            dict(job) if isinstance(job, Mapping) else job,
            cron=cron,
            every=every,
            tz=tz,
            misfire=misfire,
            catch_up_max=catch_up_max,
            grace=grace,
        )
        store_schedule(self.database, self.paths, defined)
        return defined

    # -- the original submit form --------------------------------------------------------------

    def submit(
        self, job: Mapping[str, Any] | Sequence[Mapping[str, Any]], callback: Callback | None = None
    ) -> Handle:
        """Submit a job dict, or a list of them (a chain), in the original form.

        ``callback(error, data)`` gets the one response; ``callback=None`` is fire-and-forget:
        nothing is tracked and the returned Handle cannot be waited on.

        Raises:
            InvalidJob: the job or chain is malformed (the message says how).
        """
        max_bytes = self.settings.max_data_bytes
        if isinstance(job, Mapping):
            requests = [parse_job(job, max_bytes)]
            as_chain = False
        elif isinstance(job, Sequence) and not isinstance(job, (str, bytes)):
            requests = [parse_job(j, max_bytes, f"chain step {i}") for i, j in enumerate(job)]
            as_chain = len(requests) != 1
        else:
            raise InvalidJob(f"submit() takes a job dict or a list of them, got {job!r:.80}")
        return self.submit_requests(
            requests, callback=callback, tracked=callback is not None, as_chain=as_chain
        )

    def done_with(self, ticket: Ticket, error: Any = None, result: JSON = None) -> bool:
        """Finish a running job (the original style; from any thread).

        ``error`` is None on success, else an exception or a message. Returns False when the
        job was already finished (the first finish wins).
        """
        runtime = self._runtime
        if runtime is None:
            raise AtmosphereError("done_with() needs a running cloud for this app")
        return runtime.done_with(ticket, error, result)

    def start_cloud(
        self,
        *,
        name: str | None = None,
        concurrency: int = 1,
        prefetch: int = 0,
        grace: float = 30.0,
    ) -> Cloud:
        """Run a cloud for this app's tasks inside this process (a web app, a notebook, a test)
        and return it once registered; as a context manager it drains and stops on exit::

            with app.start_cloud(concurrency=4):
                print(sync_user.delay({"id": 1}).get())

        Handlers run in threads of this process (``async def`` ones on the cloud's event
        loop); a dispatcher still assigns the jobs. ``cloud.stop()`` ends it otherwise.
        Options as for ``atmosphere cloud``.
        """
        from .worker.cloud import Cloud

        cloud = Cloud(self, name=name, concurrency=concurrency, prefetch=prefetch, grace=grace)
        cloud.start()
        return cloud

    def close(self) -> None:
        """Stop this app's maker (pending handles get a ResponseTimeout at once), and close the
        database connection if the app opened it itself."""
        with self._lock:
            maker, self._maker = self._maker, None
            database = self._database if self._owns_database else None
            if database is not None:
                self._database, self._owns_database = None, False
        if maker is not None:
            maker.close()
        if database is not None:
            database.close()

    # -- the doors a cloud, a task and a chain use ----------------------------------------------

    def attach(self, runtime: Runtime | None) -> None:
        """Called by the cloud running this app's tasks as it starts (and with None as it stops):
        done_with() goes to it, and the app's periodic schedules are stored."""
        self._runtime = runtime
        if runtime is not None and self._schedules.schedules:
            try:
                self._schedules.store_all(self.database, self.paths)
            except AtmosphereError as exc:  # the cloud still runs; the next start stores them
                _log.warning("could not store this app's periodic schedules: %s", exc)

    def submit_requests(
        self,
        requests: list[JobRequest],
        *,
        callback: Callback | None,
        tracked: bool,
        as_chain: bool = False,
    ) -> Handle:
        """Submit requests (checked here): one job, or a chain (``as_chain``). A job
        submitted inside a handler is its child (the handler's slot is lent while it waits)."""
        running = current_job.get()
        submission = self._prepare(requests, tracked=tracked, as_chain=as_chain)
        handle = self._configured()[1].submit(submission, callback=callback)
        if running is not None and tracked:
            running.children.append(handle)
        return handle

    def submit_each(self, requests: list[JobRequest], *, tracked: bool) -> list[Handle]:
        """Submit each request as a job of its own, in a few updates (``Task.map``)."""
        running = current_job.get()
        submissions = [self._prepare([r], tracked=tracked, as_chain=False) for r in requests]
        handles = self.maker.submit_many(submissions)
        if running is not None and tracked:
            running.children.extend(handles)
        return handles

    # -- internals ---------------------------------------------------------------------------

    def _configured(self) -> tuple[Settings, Maker]:
        """The settings and the maker: every submission needs both, and once they exist they
        are read without the properties' locks (the maker's alone takes four)."""
        settings, maker = self._settings, self._maker
        if settings is None or maker is None:
            return self.settings, self.maker
        return settings, maker

    def _prepare(self, requests: list[JobRequest], *, tracked: bool, as_chain: bool) -> Submission:
        """Check a job (or chain) and build the records and the one update that submit it."""
        settings, maker = self._configured()
        requests = [
            check_request(r, settings.max_data_bytes, f"chain step {i}" if as_chain else "job")
            for i, r in enumerate(requests)
        ]
        if as_chain:
            check_chain(requests)
        running = current_job.get()
        parent = running.job_id if running is not None else None
        reply_to = maker.id if tracked else None
        new_id = maker.database.new_id()  # this app's database (not the property: its locks)
        if as_chain:
            state, first = plan_chain(
                requests,
                chain_id=new_id,
                reply_to=reply_to,
                parent=parent,
                default_timeout=settings.default_timeout,
            )
            ticket = Ticket(type=first.type, name=first.name, id=new_id)
            writes = _chain_writes(maker.paths, state, first)
            wait = state.timeout
        else:
            now = time.time()
            spec = plan_job(
                requests[0],
                job_id=new_id,
                reply_to=reply_to,
                parent=parent,
                default_timeout=settings.default_timeout,
                now=now,
            )
            ticket = Ticket(type=spec.type, name=spec.name, id=new_id)
            writes = _job_writes(maker.paths, spec)
            # A delayed job's caller waits from when the job is due, not from now.
            wait = spec.timeout + (max(0.0, spec.eta - now) if spec.eta else 0.0)
        return Submission(writes, new_id, ticket, wait if tracked else None)
