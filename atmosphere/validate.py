"""Checking what a caller submits and turning it into wire records (pure: InvalidJob says why).

A job arrives either as a dict in the original form (``{"type", "name", "data", "timeout"}``)
or from ``Task.submit``; both become a ``JobRequest``, are checked the same way, and then become
the ONE multi-path update that submits them (docs/protocol.md, "The hot path").
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from .db.base import SERVER_TIMESTAMP
from .errors import InvalidJob
from .jobs import (
    ChainRef,
    ChainState,
    ChainStep,
    JobSpec,
    JobState,
    chain_step_id,
    check_data,
    check_name,
    encode_json,
)
from .jobs import check_key as _check_key
from .paths import Paths
from .storable import MAX_VALUE_BYTES, check_value, depth_of
from .types import JSON

# More extra attempts than this is a loop, not a retry policy: each failed one keeps an entry
# in the job record and a trip through ``live/delayed``.
MAX_RETRIES = 100
# The longest wait between attempts (and its cap); anything later belongs to a schedule.
MAX_BACKOFF = 24 * 3600.0

# Durations written as text (command-line options): "90", "90s", "5m", "2h", "1d".
_DURATION_TEXT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}


@dataclass(frozen=True)
class JobRequest:
    """One job as a caller asked for it, before it has an id."""

    type: str
    name: str | None = None
    data: JSON = None
    timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0
    countdown: float | None = None
    eta: float | None = None  # unix seconds
    callback: bool = False

    @property
    def delayed(self) -> bool:
        """True when the job should wait in ``live/delayed`` before it is queued."""
        return self.countdown is not None or self.eta is not None


# Every option a job dict may carry, one per JobRequest field; anything else is a typo we
# refuse rather than ignore.
JOB_OPTIONS = tuple(f.name for f in fields(JobRequest))


def parse_job(raw: Any, max_bytes: int, where: str = "job") -> JobRequest:
    """Check a job dict in the original form and return it as a JobRequest."""
    if not isinstance(raw, Mapping):
        raise InvalidJob(f"{where} must be a dict with at least a 'type', got {raw!r:.80}")
    unknown = sorted(str(k) for k in raw if k not in JOB_OPTIONS)
    if unknown:
        raise InvalidJob(
            f"{where} has unknown option(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(JOB_OPTIONS)}"
        )
    if "type" not in raw:
        raise InvalidJob(f"{where} has no 'type' (the job type / queue name)")
    callback = raw.get("callback", False)
    if not isinstance(callback, bool):
        raise InvalidJob(f"{where} 'callback' must be true or false, got {callback!r}")
    request = JobRequest(
        type=raw["type"],
        name=raw.get("name"),
        data=raw.get("data"),
        timeout=seconds(raw.get("timeout"), f"{where} 'timeout'"),
        retries=retry_count(raw.get("retries", 0), f"{where} 'retries'"),
        retry_backoff=backoff(raw.get("retry_backoff", 1.0), f"{where} 'retry_backoff'"),
        retry_backoff_max=backoff(
            raw.get("retry_backoff_max", 300.0), f"{where} 'retry_backoff_max'"
        ),
        countdown=countdown_seconds(raw.get("countdown"), f"{where} 'countdown'"),
        eta=when(raw.get("eta"), f"{where} 'eta'"),
        callback=callback,
    )
    return check_request(request, max_bytes, where)


def check_request(request: JobRequest, max_bytes: int, where: str = "job") -> JobRequest:
    """Check the fields every job needs (keys, JSON data and its size, a positive timeout)."""
    _check_key(request.type, f"{where} type")
    if request.name is not None:
        check_name(request.name, f"{where} name")  # a label, never a key
    check_data(request.data, max_bytes, f"{where} data")
    if request.timeout is not None:
        seconds(request.timeout, f"{where} timeout")
    retry_count(request.retries, f"{where} retries")
    backoff(request.retry_backoff, f"{where} retry_backoff")
    backoff(request.retry_backoff_max, f"{where} retry_backoff_max")
    if request.countdown is not None:  # (most jobs give neither: no message to build)
        countdown_seconds(request.countdown, f"{where} countdown")
    if request.eta is not None:
        when(request.eta, f"{where} eta")
    if request.countdown is not None and request.eta is not None:
        raise InvalidJob(f"{where} gives both 'countdown' and 'eta'; give one")
    return request


def check_chain(requests: Sequence[JobRequest]) -> None:
    """Check the rules a chain adds: not empty, one callback at most, later steps plain."""
    if not requests:
        raise InvalidJob("a chain needs at least one job")
    callbacks = [i for i, r in enumerate(requests) if r.callback]
    if len(callbacks) > 1:
        raise InvalidJob(
            f"only one job of a chain may say callback: true (steps {callbacks} do); "
            "a chain answers its caller once"
        )
    for i, request in enumerate(requests):
        if request.delayed:
            raise InvalidJob(f"chain step {i} has 'countdown'/'eta'; chains cannot be delayed")
        if i and request.name is not None:
            raise InvalidJob(f"chain step {i} has a 'name'; later jobs take the chain's name")
        if i and request.timeout is not None:
            raise InvalidJob(
                f"chain step {i} has a 'timeout'; the chain's timeout counts from its submission"
            )


# -- building the records and the one update ---------------------------------------------------


def plan_job(
    request: JobRequest,
    *,
    job_id: str,
    reply_to: str | None,
    parent: str | None,
    default_timeout: float,
    now: float,
) -> JobSpec:
    """The JobSpec to queue (or to delay, with an ``eta``) for one request."""
    eta: float | None = None
    if request.countdown is not None:
        eta = now + request.countdown
    elif request.eta is not None:
        eta = request.eta
    return JobSpec(
        id=job_id,
        type=request.type,
        name=request.name or job_id,
        data=request.data,
        timeout=request.timeout or default_timeout,
        reply_to=reply_to,
        retries=request.retries,
        retry_backoff=request.retry_backoff,
        retry_backoff_max=request.retry_backoff_max,
        parent=parent,
        eta=eta,
    )


def job_writes(paths: Paths, spec: JobSpec) -> dict[str, JSON]:
    """The one update (relative to the root) that submits a job: its record + its queue entry.

    Raises InvalidJob for data the database would refuse where it will sit: in the queue, and
    then in a cloud's inbox, which is as deep (a delayed job's entry is shallower). It sits
    there encoded (``data_json``), so only the size of that one string can be refused.
    """
    text = encode_json(spec.data, "job data")
    if not always_storable(text):
        depth = depth_of(paths.queue(spec.type, spec.id)) + 1
        check_value(text, "job data", depth=depth, max_bytes=MAX_VALUE_BYTES)
    entry = spec.to_json()
    entry["submitted"] = SERVER_TIMESTAMP
    jobs, queue, delayed = _submit_prefixes(paths)
    if spec.eta is not None:
        state, where = JobState.DELAYED, f"{delayed}{spec.id}"
    else:
        state, where = JobState.QUEUED, f"{queue}{spec.type}/{spec.id}"
    return {f"{jobs}{spec.id}": {**entry, "state": str(state)}, where: entry}


@functools.lru_cache(maxsize=16)
def _submit_prefixes(paths: Paths) -> tuple[str, str, str]:
    """Where a submission writes, relative to the root, each up to the keys that follow (jobs,
    queue, delayed): spelled by ``paths`` once, not per job (types and ids are single keys)."""
    jobs, queue, delayed = (
        f"{paths.rel(p)}/" for p in (paths.jobs(), paths.queue(), paths.delayed())
    )
    return jobs, queue, delayed


# encode_json's text is valid UTF-8 (orjson's, or the stdlib's ASCII), so the database can only
# refuse it for its size; written as a JSON string a character takes 6 bytes at most ("\u001f"),
# so a text this short stays under MAX_VALUE_BYTES and need not be measured (nor encoded again).
_ALWAYS_STORABLE_CHARS = (MAX_VALUE_BYTES - 2) // 8


def always_storable(text: str) -> bool:
    """Whether the database stores ``text`` (from ``encode_json``) whatever it holds (pure)."""
    return len(text) <= _ALWAYS_STORABLE_CHARS


def plan_chain(
    requests: Sequence[JobRequest],
    *,
    chain_id: str,
    reply_to: str | None,
    parent: str | None,
    default_timeout: float,
) -> tuple[ChainState, JobSpec]:
    """The ChainState and its first step's JobSpec (id ``{chainId}-0``) for a checked chain."""
    first = requests[0]
    name = first.name or chain_id
    timeout = first.timeout or default_timeout
    steps = tuple(
        ChainStep(
            type=r.type,
            data=r.data,
            callback=r.callback,
            retries=r.retries,
            retry_backoff=r.retry_backoff,
            retry_backoff_max=r.retry_backoff_max,
        )
        for r in requests
    )
    state = ChainState(
        id=chain_id, name=name, steps=steps, timeout=timeout, reply_to=reply_to, parent=parent
    )
    spec = JobSpec(
        id=chain_step_id(chain_id, 0),
        type=first.type,
        name=name,
        data=first.data,
        timeout=timeout,
        retries=first.retries,
        retry_backoff=first.retry_backoff,
        retry_backoff_max=first.retry_backoff_max,
        chain=ChainRef(chain_id, 0),
        parent=parent,
    )
    return state, spec


def chain_writes(paths: Paths, state: ChainState, first: JobSpec) -> dict[str, JSON]:
    """The one update that submits a chain: its state, its first job's record and queue entry.

    Raises InvalidJob for step data the database would refuse in the chain's state
    (``steps/{i}/data_json``), where every step's data waits until the step is queued.
    """
    depth = depth_of(paths.chains(state.id)) + 3
    for i, step in enumerate(state.steps):
        what = f"chain step {i} data"
        text = encode_json(step.data, what)
        if not always_storable(text):
            check_value(text, what, depth=depth, max_bytes=MAX_VALUE_BYTES)
    chain = state.to_json()
    chain["submitted"] = SERVER_TIMESTAMP
    return {paths.rel(paths.chains(state.id)): chain, **job_writes(paths, first)}


# -- small checks ------------------------------------------------------------------------------


def seconds(value: Any, what: str) -> float | None:
    """A positive duration in seconds (a number or a timedelta), or None when absent."""
    duration = _duration(value, what)
    if duration is not None and duration <= 0:
        raise InvalidJob(f"{what} must be positive, got {value!r}")
    return duration


def when(value: Any, what: str) -> float | None:
    """A moment as unix seconds (a datetime or a number), or None when absent."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidJob(f"{what} must be a datetime or unix seconds, got {value!r}")
    return float(value)


def countdown_seconds(value: Any, what: str) -> float | None:
    """A delay in seconds (>= 0; a number or a timedelta), or None when absent."""
    duration = _duration(value, what)
    if duration is not None and duration < 0:
        raise InvalidJob(f"{what} must not be negative, got {value!r}")
    return duration


def _duration(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidJob(f"{what} must be a number of seconds, got {value!r}")
    return float(value)


def parse_duration(text: str, what: str = "duration") -> float:
    """A duration written as text ('90', '90s', '5m', '2h', '1d') in seconds."""
    match = _DURATION_TEXT.fullmatch(text.lower())
    if not match:
        raise InvalidJob(f"{what} {text!r} is not a duration like 90s, 5m, 2h or 1d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def duration_text(seconds: float) -> str:
    """``seconds`` in the largest unit that divides it ('5m', '2h', '90s'); parse_duration's
    inverse."""
    for unit, size in _DURATION_UNITS.items():
        if size > 1 and seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.15g}s"  # never an exponent, which parse_duration would refuse


def retry_count(value: Any, what: str) -> int:
    """A number of extra attempts: a whole number from 0 to ``MAX_RETRIES``."""
    count = _count(value, what)
    if count > MAX_RETRIES:
        raise InvalidJob(f"{what} is {count}, over the limit of {MAX_RETRIES} extra attempts")
    return count


def backoff(value: Any, what: str) -> float:
    """A wait between attempts in seconds: positive and at most ``MAX_BACKOFF``."""
    checked = seconds(value, what)
    if checked is None:
        raise InvalidJob(f"{what} must be a number of seconds, got None")
    if checked > MAX_BACKOFF:
        raise InvalidJob(f"{what} is {checked:g} s, over the limit of {MAX_BACKOFF:g} s (a day)")
    return checked


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidJob(f"{what} must be a whole number >= 0, got {value!r}")
    return value
