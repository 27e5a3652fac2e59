"""A task and a chain need of their app only a ``Submitter`` (task.py): a name and the two
doors that requests go through. Any object with those will do, so task.py needs nothing else
of ``Atmosphere``."""

from __future__ import annotations

from typing import Any, cast

from atmosphere import chain
from atmosphere.task import Submitter, Task
from atmosphere.validate import JobRequest


class Recorder:
    """A Submitter that records what it is given and answers with a marker."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[JobRequest], dict[str, Any]]] = []

    def submit_requests(
        self,
        requests: list[JobRequest],
        *,
        callback: Any,
        tracked: bool,
        as_chain: bool = False,
    ) -> Any:
        self.calls.append(("requests", requests, {"tracked": tracked, "as_chain": as_chain}))
        return "handle"

    def submit_each(self, requests: list[JobRequest], *, tracked: bool) -> Any:
        self.calls.append(("each", requests, {"tracked": tracked}))
        return ["handle"] * len(requests)


def double(ticket: Any, data: Any) -> Any:
    return data * 2


def test_a_task_submits_through_any_submitter() -> None:
    owner = Recorder()
    submitter: Submitter = owner  # the protocol is all a task asks for
    add = Task(submitter, "double", double, retries=2)

    # (the recorder answers "handle" where an app gives handles)
    assert cast(object, add.delay(21)) == "handle"
    assert cast(object, add.map([1, 2], forget=True)) == ["handle", "handle"]

    (kind, requests, options), (kind2, many, options2) = owner.calls
    assert (kind, options) == ("requests", {"tracked": True, "as_chain": False})
    assert [(r.type, r.data, r.retries) for r in requests] == [("double", 21, 2)]
    assert (kind2, options2) == ("each", {"tracked": False})
    assert [r.data for r in many] == [1, 2]
    assert repr(add) == "<Task 'double' of 'recorder'>"


def test_a_chain_submits_through_its_first_steps_submitter() -> None:
    owner = Recorder()
    add = Task(owner, "double", double)

    assert cast(object, chain(add.s(1), add.s()).submit()) == "handle"

    ((kind, requests, options),) = owner.calls
    assert (kind, options) == ("requests", {"tracked": True, "as_chain": True})
    assert [r.data for r in requests] == [1, None]


def test_a_signature_is_a_job_request_bound_to_its_app_with_every_option_of_its_task() -> None:
    # Given a task with a full retry policy and a timeout,
    app = Recorder()
    sync = Task(
        app,
        "sync",
        lambda ticket, job: None,
        timeout=9.0,
        retries=2,
        retry_backoff=3.0,
        retry_backoff_max=40.0,
    )
    step = sync.s({"k": 1}, name="n", callback=True)
    # I expect its signature to declare no option of its own: every one is JobRequest's,
    assert isinstance(step, JobRequest) and step.app is app
    # and to hand the chain the very request the task would have made (retry_backoff_max too).
    assert step.request() == JobRequest(
        type="sync",
        name="n",
        data={"k": 1},
        callback=True,
        retries=2,
        retry_backoff=3.0,
        retry_backoff_max=40.0,
    )
    chain(step, sync.s(2)).submit()
    first, second = app.calls[-1][1]
    assert (first.timeout, second.timeout) == (9.0, None)  # the task's timeout, first step only
    assert second.retry_backoff_max == 40.0
