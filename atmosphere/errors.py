"""Every public Atmosphere error, under one base class."""

from __future__ import annotations

import json
from typing import Any


class AtmosphereError(Exception):
    """Base class of every error Atmosphere raises on purpose."""


class ConfigError(AtmosphereError):
    """The configuration is incomplete or contradicts itself (bad URL, missing credentials)."""


class DatabaseError(AtmosphereError):
    """The database could not be reached or refused a request."""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status the server answered; None: no answer at all


class PermissionDenied(DatabaseError):
    """The database's security rules refused a read or write."""


class RequestRefused(DatabaseError):
    """The database refused a request as invalid (HTTP 400, 413...): resending cannot help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidJob(AtmosphereError, ValueError):
    """A submitted job is malformed: unknown option, bad key, non-JSON data, too large."""


class InvalidRecord(AtmosphereError, ValueError):
    """A record read from the database does not have the shape its path promises."""


class JobError(AtmosphereError):
    """A job finished with an error; carries the job's identity and the remote details.

    ``error`` is the JSON value a handler passed to ``done_with(ticket, error, result)`` (None
    when it raised), and ``result`` the result it passed along with it.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        job_type: str | None = None,
        error_type: str | None = None,
        remote_traceback: str | None = None,
        error: Any = None,
        result: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.job_type = job_type
        self.error_type = error_type
        self.remote_traceback = remote_traceback
        self.error = error
        self.result = result

    def __str__(self) -> str:
        prefix = f"{self.error_type}: " if self.error_type else ""
        return f"{prefix}{self.message}"

    def to_json(self) -> dict[str, Any]:
        """The wire form of this error (what a reply record holds)."""
        out: dict[str, Any] = {"kind": type(self).__name__, "message": self.message}
        if self.error_type:
            out["type"] = self.error_type
        if self.remote_traceback:
            out["traceback"] = self.remote_traceback
        if self.error is not None:
            out["value_json"] = json.dumps(self.error)
        return out


class JobFailed(JobError):
    """The handler raised (or called done_with with an error) and no retry is left."""


class UnknownTaskType(JobFailed):
    """The cloud a job reached has no task for its type (a job failure, so a JobFailed too)."""


class InvalidResult(JobFailed):
    """The handler's result (or error) is something the database would refuse to store."""


# The issue names this one NoSuchType; keep both spellings.
NoSuchType = UnknownTaskType


class JobTimeout(JobError):
    """No response arrived within the job's timeout; the job may still complete remotely."""


class ResponseTimeout(JobTimeout):
    """The caller stopped waiting (``get(timeout=t)`` ran out, or the app closed) before the
    job's own timeout: the job has not timed out, and ``get()`` may be called again.

    A JobTimeout too, so code that catches JobTimeout around ``get(timeout=t)`` keeps working.
    """


class JobLost(JobError):
    """The job record vanished (deleted by an operator) before any response."""


class CloudDied(JobFailed):
    """The clouds running the job died ``max_deaths`` times (the job may be what kills them)."""


class SubmitFailed(JobError, DatabaseError):
    """The database write that submits the job failed (after the client's retries): it may not
    have been submitted. ``get()`` raises it; the handle's callbacks get it."""


class JobTooLarge(JobFailed, InvalidJob):
    """One job of a batch was too large for a database write: not submitted, the rest were."""


class InvalidSchedule(ConfigError, ValueError):
    """A schedule definition is malformed: bad name, cron, time zone, interval or job."""


class NoSuchSchedule(AtmosphereError, LookupError):
    """An operation named a schedule that is not defined."""


class Retry(AtmosphereError):  # noqa: N818 - a request, not an error
    """Raise inside a handler to ask for another attempt, optionally after ``delay`` seconds."""

    def __init__(self, delay: float | None = None, message: str = "retry requested") -> None:
        super().__init__(message)
        self.delay = delay


_ERROR_KINDS: dict[str, type[JobError]] = {
    "JobFailed": JobFailed,
    "UnknownTaskType": UnknownTaskType,
    "InvalidResult": InvalidResult,
    "JobTimeout": JobTimeout,
    "JobLost": JobLost,
    "JobError": JobError,
    "CloudDied": CloudDied,
}


def job_error_from_json(
    raw: Any, *, job_id: str | None = None, job_type: str | None = None, result: Any = None
) -> JobError:
    """Rebuild a typed error from its wire form; garbage becomes a plain JobFailed."""
    if not isinstance(raw, dict):
        return JobFailed(str(raw), job_id=job_id, job_type=job_type, result=result)
    cls = _ERROR_KINDS.get(str(raw.get("kind")), JobFailed)
    return cls(
        str(raw.get("message", "")),
        job_id=job_id,
        job_type=job_type,
        error_type=raw.get("type") if isinstance(raw.get("type"), str) else None,
        remote_traceback=raw.get("traceback") if isinstance(raw.get("traceback"), str) else None,
        error=_value(raw),
        result=result,
    )


def _value(raw: dict[str, Any]) -> Any:
    """The JSON error a handler gave done_with: encoded in ``value_json`` (``jobs.payload``
    decodes the same way; it cannot be imported here)."""
    text = raw.get("value_json")
    if not isinstance(text, str):
        return raw.get("value")
    try:
        return json.loads(text)
    except ValueError:
        return text
