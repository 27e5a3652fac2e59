"""How one attempt of a job ends in a cloud, and the writes beside a completion (pure).

A handler ends by returning (a JSON value, or ``LATER`` to finish with ``done_with`` later),
by raising (``Retry`` asks for another attempt), or by calling ``done_with``. Each becomes a
``Finish``; ``completion.judge`` decides whether it is final (the caller is answered) or a retry
(the dispatcher schedules the next attempt); ``completion.completion_writes`` is the update for
both.
"""

from __future__ import annotations

import functools
import math
import traceback
from dataclasses import replace
from typing import Any

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.errors import DatabaseError, InvalidJob, PermissionDenied, RequestRefused, Retry
from atmosphere.jobs import Finish, JobSpec, JobState, encode_json
from atmosphere.paths import Paths
from atmosphere.storable import MAX_VALUE_BYTES, depth_of, value_problem
from atmosphere.types import JSON

# An error travels in the completion update and the caller's reply: keep it well under any
# write limit however much a handler packs into its exception.
MESSAGE_CHARS = 10_000
TRACEBACK_CHARS = 50_000


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, keeping both ends (a traceback's end matters).

    A lone surrogate (a file name decoded with ``surrogateescape``, say) is spelled out: the
    database refuses a string that is not valid UTF-8, and with it the whole completion.
    """
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]}\n... [{len(text) - 2 * keep} characters cut] ...\n{text[-keep:]}"


def error_json(exc: BaseException, kind: str = "JobFailed") -> dict[str, Any]:
    """The wire form of a handler's exception, with its traceback."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return {
        "kind": kind,
        "message": clip(str(exc) or cls.__name__, MESSAGE_CHARS),
        "type": name,
        "traceback": clip("".join(traceback.format_exception(exc)), TRACEBACK_CHARS),
    }


def invalid_result(message: str) -> Finish:
    """A final failure: what the handler produced cannot be stored (``InvalidResult``)."""
    error = {"kind": "InvalidResult", "message": clip(message, MESSAGE_CHARS)}
    return Finish(ok=False, error={**error, "type": "InvalidResult"})


def finish_returned(value: JSON, max_bytes: int, *, depth: int) -> Finish:
    """A handler returned ``value``: success, unless the database would refuse to store it
    ``depth`` levels below its root (``result_depth``)."""
    try:
        text = encode_json(value, "result")
    except InvalidJob as exc:
        return invalid_result(f"the handler's {exc}")
    # What is stored is the encoded text (``result_json``): its size is what can be refused.
    if not _surely_storable(text, max_bytes):
        problem = value_problem(text, "result", depth=depth, max_bytes=max_bytes)
        if problem is not None:
            return invalid_result(f"the handler's {problem}")
    return Finish(ok=True, result=value)


def _surely_storable(text: str, max_bytes: int) -> bool:
    """Whether ``encode_json``'s ``text`` is short enough that no limit can refuse it: stored
    as a JSON string, a character takes 6 bytes at most (an escape), and the text is valid
    UTF-8 (orjson's, or the stdlib's ASCII). Most results are a few bytes; the walk that
    ``value_problem`` does was about a tenth of a no-op job's way through the cloud (pure)."""
    return 6 * len(text) + 2 <= min(max_bytes, MAX_VALUE_BYTES)


def finish_raised(exc: BaseException) -> Finish:
    """A handler raised ``exc``; ``Retry`` asks for another attempt."""
    if isinstance(exc, Retry):
        delay = exc.delay
        if not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            delay = None  # NaN or a string would make the outcome unwritable: back off instead
        return Finish(ok=False, error=error_json(exc), retry_asked=True, retry_delay=delay)
    return Finish(ok=False, error=error_json(exc))


def finish_done_with(error: Any, result: JSON, max_bytes: int, *, depth: int) -> Finish:
    """A handler called ``done_with(ticket, error, result)``.

    A JSON ``error`` travels as such (the caller's ``JobFailed.error``), and a ``result``
    passed along with an error is kept (``JobFailed.result``), as the original library did.
    """
    if error is None:
        return finish_returned(result, max_bytes, depth=depth)
    kept = finish_returned(result, max_bytes, depth=depth).result if result is not None else None
    if isinstance(error, BaseException):
        return replace(finish_raised(error), result=kept)
    wire: dict[str, Any] = {"kind": "JobFailed", "type": "done_with"}
    try:
        encoded = encode_json(error, "error")
    except InvalidJob:
        encoded = None
    # Stored encoded as the error's "value_json", one level below where a result goes.
    if encoded is None or value_problem(encoded, "error", depth=depth + 1, max_bytes=max_bytes):
        # Not JSON, or too large to store whole: a clipped text will do.
        text = error if isinstance(error, str) else repr(error)
    else:
        text = error if isinstance(error, str) else encoded
        wire["value_json"] = encoded
    wire["message"] = clip(text, MESSAGE_CHARS)
    return Finish(ok=False, result=kept, error=wire)


def finish_unknown_type(spec: JobSpec, cloud_name: str) -> Finish:
    """The job's type has no task on this cloud."""
    return Finish(
        ok=False,
        error={
            "kind": "UnknownTaskType",
            "message": f"cloud {cloud_name!r} has no task for type {spec.type!r}",
            "type": "UnknownTaskType",
        },
    )


def handback_writes(paths: Paths, cloud_id: str, specs: list[JobSpec]) -> dict[str, JSON]:
    """Move assigned-but-unfinished jobs from this cloud's inbox back to the queue."""
    writes: dict[str, JSON] = {}
    for spec in specs:
        entry = spec.evolve(assigned=None, epoch=None).to_json()
        writes[paths.rel(paths.inbox(cloud_id, spec.id))] = None
        writes[paths.rel(paths.queue(spec.type, spec.id))] = entry
        writes[f"{paths.rel(paths.jobs(spec.id))}/state"] = str(JobState.QUEUED)
        writes[f"{paths.rel(paths.jobs(spec.id))}/cloud"] = None
    return writes


def result_depth(paths: Paths, spec: JobSpec) -> int:
    """How far below the database root the deepest copy of this attempt's result is written.

    The outcome and the record always; the reply when the cloud answers the caller. (A chain
    step's result also goes into the next step's data: the dispatcher checks that, as it alone
    knows whether there is a next step.)
    """
    return _result_depth(paths, spec.reply_to is not None)


@functools.lru_cache(maxsize=64)
def _result_depth(paths: Paths, replies: bool) -> int:
    # Ids and maker ids are single keys, so only the root and the reply decide the depth:
    # worked out once, not per job (about 5 % of a cloud's CPU per no-op job under cProfile).
    places = [f"{paths.outcomes('j')}/result_json", f"{paths.jobs('j')}/result_json"]
    if replies:
        places.append(f"{paths.replies('m', 'j')}/result_json")
    return max(depth_of(place) for place in places)


def refused_finish(reason: BaseException) -> Finish:
    """What to write instead of a completion the database refused: an ``InvalidResult``
    failure without the result (another attempt would produce the same)."""
    return invalid_result(f"the database refused to store this job's completion: {reason}")


def dropped_writes(paths: Paths, cloud_id: str, spec: JobSpec, why: str) -> dict[str, JSON]:
    """The least a cloud can write to end a job whose completion is refused in every form:
    free its inbox entry and fail its record, with values the database always takes."""
    job = paths.rel(paths.jobs(spec.id))
    return {
        paths.rel(paths.inbox(cloud_id, spec.id)): None,
        f"{job}/state": str(JobState.FAILED),
        f"{job}/finished": SERVER_TIMESTAMP,
        f"{job}/error": {
            "kind": "InvalidResult",
            "type": "InvalidResult",
            "message": clip(why, 500),
        },
    }


def transient(error: BaseException) -> bool:
    """True for a failed write worth sending again: the database was unreachable, timed out or
    failed (5xx). A refusal (4xx, a value the client spots as invalid, the rules) or a bug in
    the write itself would fail the same way again."""
    if isinstance(error, (RequestRefused, PermissionDenied)):
        return False
    return isinstance(error, DatabaseError)
