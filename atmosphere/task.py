"""Tasks and chains: ``Task`` (a registered handler you also submit through), ``Signature``
(one job of a chain) and ``chain(...)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, overload

from .errors import AtmosphereError, InvalidJob
from .handle import Callback, Handle
from .jobs import check_key
from .types import JSON, Ticket
from .validate import JOB_OPTIONS, JobRequest, check_request, countdown_seconds, seconds, when

Handler = Callable[[Ticket, JSON], JSON]
Seconds = float | timedelta


class Submitter(Protocol):
    """What a task and a chain need of their app: its name and the door that checked requests
    go through. ``Atmosphere`` is one; nothing here needs the rest of it."""

    name: str

    def submit_requests(
        self,
        requests: list[JobRequest],
        *,
        callback: Callback | None,
        tracked: bool,
        as_chain: bool = False,
    ) -> Handle: ...

    def submit_each(self, requests: list[JobRequest], *, tracked: bool) -> list[Handle]: ...


class Task:
    """A handler registered for one job type; also what you submit that type's jobs through."""

    def __init__(
        self,
        app: Submitter | None,
        job_type: str,
        fn: Handler,
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 300.0,
        done_with_only: bool = False,
    ) -> None:
        self.app = app
        self.type = job_type
        self.fn = fn
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        # The original form (app.handle_jobs): the handler finishes only through done_with.
        self.done_with_only = done_with_only
        self.shared = False  # defined by the module-level @task (see app.include)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", job_type)

    def __repr__(self) -> str:
        owner = "no app yet" if self.app is None else repr(self.app.name)
        return f"<Task {self.type!r} of {owner}>"

    def copy(self) -> Task:
        """The same handler and options, on no app yet (to register on another app)."""
        twin = Task(
            None,
            self.type,
            self.fn,
            timeout=self.timeout,
            retries=self.retries,
            retry_backoff=self.retry_backoff,
            retry_backoff_max=self.retry_backoff_max,
            done_with_only=self.done_with_only,
        )
        twin.shared = self.shared
        return twin

    def _owner(self) -> Submitter:
        if self.app is None:
            raise AtmosphereError(
                f"task {self.type!r} is not registered on an app yet: "
                "call app.include(<its module>) first"
            )
        return self.app

    def __call__(self, ticket: Ticket, data: JSON) -> JSON:
        """Run the handler here, in this process (no job is submitted)."""
        return self.fn(ticket, data)

    def delay(self, data: JSON = None) -> Handle:
        """Submit a job of this type with ``data``; the Handle gives its one response."""
        # submit(data=data), without its options to read: delay() is the RPC's hot path.
        request = self._request(data=data, timeout=self.timeout)
        return self._owner().submit_requests([request], callback=None, tracked=True)

    def submit(
        self,
        data: JSON = None,
        *,
        name: str | None = None,
        timeout: Seconds | None = None,
        countdown: Seconds | None = None,
        eta: datetime | float | None = None,
        retries: int | None = None,
        callback: Callback | None = None,
        forget: bool = False,
    ) -> Handle:
        """Submit a job of this type: ``task.submit(data, name=..., ...)``.

        Args:
            data: any JSON value, at most ``settings.max_data_bytes`` when encoded (positional,
                as in ``delay(data)`` and ``s(data)``, or ``data=``).
            name: a free-text label within the type (default: the job id).
            timeout: seconds the caller waits for the response (default: the task's, then
                ``settings.default_timeout``); counted from when the job is due to run.
            countdown: run no sooner than this many seconds from now.
            eta: run no sooner than this moment (a datetime or unix seconds).
            retries: extra attempts after a failure (default: the task's).
            callback: ``callback(error, data)`` called once with the response.
            forget: fire-and-forget: no response is tracked (errors are logged by the cloud).

        Raises:
            InvalidJob: the job is malformed (the message says how).
        """
        request = self._request(
            name=name,
            data=data,
            timeout=seconds(timeout, "timeout") or self.timeout,
            retries=self.retries if retries is None else retries,
            countdown=countdown_seconds(countdown, "countdown"),
            eta=when(eta, "eta"),
        )
        return self._owner().submit_requests([request], callback=callback, tracked=not forget)

    def map(
        self,
        items: Iterable[JSON],
        *,
        timeout: Seconds | None = None,
        forget: bool = False,
    ) -> list[Handle]:
        """Submit one job per item of ``items`` (as its data) in a few updates; their handles.

        Much faster than a loop of ``delay()`` for many jobs: one write per 500 jobs.

        Raises:
            InvalidJob: an item is not valid job data (nothing is submitted then).
        """
        request = self._request(timeout=seconds(timeout, "timeout") or self.timeout)
        requests = [dataclasses.replace(request, data=item) for item in items]
        return self._owner().submit_each(requests, tracked=not forget)

    def s(
        self,
        data: JSON = None,
        *,
        name: str | None = None,
        timeout: Seconds | None = None,
        callback: bool = False,
    ) -> Signature:
        """A signature: this task with ``data``, to put in a ``chain(...)``."""
        step = self._request(
            data=data, name=name, timeout=seconds(timeout, "timeout"), callback=callback
        )
        return Signature.of(step, default_timeout=self.timeout, app=self.app)

    def _request(self, **options: Any) -> JobRequest:
        """A job of this task's type with its retry policy; ``options`` set the rest (and may
        override ``retries``). Built in one go: a ``dataclasses.replace`` of a policy request
        cost as much again, on every submission."""
        options.setdefault("retries", self.retries)
        return JobRequest(
            type=self.type,
            retry_backoff=self.retry_backoff,
            retry_backoff_max=self.retry_backoff_max,
            **options,
        )


@dataclass(frozen=True)
class Signature(JobRequest):
    """One job of a chain as written in code (``task.s(data)``): a JobRequest bound to its app.

    Its job options are JobRequest's, declared once there (a chain refuses ``countdown`` and
    ``eta``); a Signature adds only its task's timeout, for the first step, and its app.
    """

    default_timeout: float | None = field(default=None, compare=False)
    app: Submitter | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        request: JobRequest,
        *,
        default_timeout: float | None = None,
        app: Submitter | None = None,
    ) -> Signature:
        """``request`` bound to ``app``."""
        return cls(**_options(request), default_timeout=default_timeout, app=app)

    def request(self) -> JobRequest:
        """This step as a plain JobRequest (without its app)."""
        return JobRequest(**_options(self))


def _options(request: JobRequest) -> dict[str, Any]:
    # JOB_OPTIONS: JobRequest's field names, listed once (dataclasses.fields() walks them all
    # per call, twice per chain step)
    return {name: getattr(request, name) for name in JOB_OPTIONS}


class Chain:
    """Jobs that run in sequence, data cascading from each to the next; one response."""

    def __init__(self, *steps: Signature | Task) -> None:
        if not steps:
            raise InvalidJob("a chain needs at least one job")
        self.steps = tuple(_signature(step, i) for i, step in enumerate(steps))

    def __repr__(self) -> str:
        return "chain(" + ", ".join(s.type for s in self.steps) + ")"

    def submit(
        self,
        callback: Callback | None = None,
        *,
        app: Submitter | None = None,
        forget: bool = False,
    ) -> Handle:
        """Submit the chain; the Handle gives its one response (a ``callback: true`` step's
        result, the first error, or the last step's result).

        Raises:
            InvalidJob: the chain is malformed (empty, several callbacks, ...).
        """
        owner = app or next((s.app for s in self.steps if s.app is not None), None)
        if owner is None:
            raise AtmosphereError("this chain has no app: pass submit(app=...)")
        requests = [s.request() for s in self.steps]
        if requests[0].timeout is None and self.steps[0].default_timeout is not None:
            requests[0] = dataclasses.replace(requests[0], timeout=self.steps[0].default_timeout)
        return owner.submit_requests(requests, callback=callback, tracked=not forget, as_chain=True)


@overload
def task(job_type: Handler, /) -> Task: ...


@overload
def task(
    job_type: str | None = None,
    *,
    timeout: Seconds | None = None,
    retries: int = 0,
    retry_backoff: Seconds = 1.0,
    retry_backoff_max: Seconds = 300.0,
) -> Callable[[Handler], Task]: ...


def task(
    job_type: str | Handler | None = None,
    *,
    timeout: Seconds | None = None,
    retries: int = 0,
    retry_backoff: Seconds = 1.0,
    retry_backoff_max: Seconds = 300.0,
) -> Task | Callable[[Handler], Task]:
    """``@task`` / ``@task("syncUser", ...)`` for a module that does not own the app (Celery's
    ``shared_task``): the task belongs to the first app that ``include()``s its module.

    Options as for ``app.task``.
    """
    return decorator(
        _shared,
        job_type,
        timeout=timeout,
        retries=retries,
        retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max,
    )


def _shared(task: Task) -> Task:
    task.shared = True  # app.include(module) registers these, not tasks the module imported
    return task


def decorator(
    add: Callable[[Task], Task],
    job_type: str | Handler | None,
    *,
    timeout: Seconds | None,
    retries: int,
    retry_backoff: Seconds,
    retry_backoff_max: Seconds,
) -> Task | Callable[[Handler], Task]:
    """The task decorator in all its forms (bare, ``()``, ``("type", ...)``); ``add`` gets each
    new Task (no app yet) and returns it registered."""
    fn = job_type if callable(job_type) else None  # bare @task: the decorated function
    given = None if callable(job_type) else job_type
    checked = JobRequest(
        type="x",
        timeout=seconds(timeout, "timeout"),
        retries=retries,
        retry_backoff=seconds(retry_backoff, "retry_backoff") or 1.0,
        retry_backoff_max=seconds(retry_backoff_max, "retry_backoff_max") or 300.0,
    )
    check_request(checked, max_bytes=64, where="task")  # no data to check yet

    def define(handler: Handler) -> Task:
        name = check_key(given or getattr(handler, "__name__", ""), "task type")
        new = Task(
            None,
            name,
            handler,
            timeout=checked.timeout,
            retries=checked.retries,
            retry_backoff=checked.retry_backoff,
            retry_backoff_max=checked.retry_backoff_max,
        )
        return add(new)

    return define if fn is None else define(fn)


def chain(*steps: Signature | Task) -> Chain:
    """``chain(a.s(data), b.s(data, callback=True), ...)``: a chain of jobs, run in order.

    A task given as such is a step without data of its own: ``chain(a, b)``.

    Raises:
        InvalidJob: no step, or a step that is neither a Task nor a Signature.
    """
    return Chain(*steps)


def _signature(step: object, index: int) -> Signature:
    if isinstance(step, Signature):
        return step
    if isinstance(step, Task):
        return step.s()
    raise InvalidJob(
        f"chain step {index} is {step!r:.80}; a chain takes tasks or signatures "
        "(task.s(data)); for job dicts use app.submit([job1, job2], callback)"
    )
