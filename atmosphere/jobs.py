"""Wire records: what makers, clouds and the dispatcher write for each other (docs/protocol.md).

Every record is a frozen dataclass with ``to_json()`` and ``from_json()``. ``from_json`` raises
``InvalidRecord`` on anything malformed, so garbage written into the database is reported and
skipped instead of crashing a process. Times are epoch seconds here and ms on the wire: the
records convert (``wiretime.py``) as they parse and render, and nothing else does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from .errors import InvalidJob
from .errors import InvalidRecord as InvalidRecord  # readers catch it beside the records
from .fields import int_of, number_of, obj_of, pruned, text_of
from .types import JSON
from .wiretime import parse_ms, render_ms

_Record = TypeVar("_Record")

# Firebase forbids these in keys: . $ # [ ] / and ASCII control characters.
_INVALID_KEY = re.compile(r"[.$#\[\]/\x00-\x1f\x7f]")
MAX_KEY_BYTES = 768
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME_CHARS = 1000


class JobState(StrEnum):
    """Where a job is in its life; stored in ``jobs/{id}/state``."""

    QUEUED = "queued"
    DELAYED = "delayed"
    ASSIGNED = "assigned"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISCARDED = "discarded"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.DISCARDED)


def check_key(value: Any, what: str) -> str:
    """Return ``value`` if it is a valid Firebase key, else raise InvalidJob saying why."""
    if not isinstance(value, str) or not value:
        raise InvalidJob(f"{what} must be a non-empty string, got {value!r}")
    bad = _INVALID_KEY.search(value)
    if bad:
        raise InvalidJob(
            f"{what} {value!r} contains {bad.group()!r}; keys may not contain . $ # [ ] / "
            "or control characters"
        )
    if len(value.encode()) > MAX_KEY_BYTES:
        raise InvalidJob(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    return value


def check_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a job name, else raise InvalidJob saying why.

    A name is a free-text label ("special job", "ada@example.com", "user #1"): it is stored as a
    field and searched by value, never used as a database key, so only its type, length and
    control characters (which would garble logs and the station) are checked.
    """
    if not isinstance(value, str) or not value:
        raise InvalidJob(f"{what} must be a non-empty string, got {value!r:.80}")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidJob(f"{what} is {len(value)} characters, over the {MAX_NAME_CHARS} allowed")
    bad = _CONTROL.search(value)
    if bad:
        raise InvalidJob(f"{what} {value!r:.80} contains the control character {bad.group()!r}")
    return value


def encode_json(value: Any, what: str = "value") -> str:
    """The text a job's data, a result or an error value travels as (``data_json`` ...).

    One string field keeps every JSON value exact: stored as a tree, Firebase drops empty
    objects and lists and turns objects with keys 0, 1, ... into lists.

    Raises:
        InvalidJob: ``value`` is not JSON (NaN, a set, an object).
    """
    if value is None:  # a chain step's or a job's usual data: "null", yet not a NaN's null
        return "null"
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # beyond 64 bits, a lone surrogate, a key that is not a string, not JSON
        text = None
    if text is None or "null" in text:  # orjson writes NaN as null; the stdlib refuses it
        try:
            # ASCII-escaped, a lone surrogate survives the UTF-8 of the request too.
            text = json.dumps(value, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidJob(f"{what} is not JSON-serialisable: {exc}") from None
    return text


def payload(raw: Mapping[str, Any], field: str) -> Any:
    """A record's ``field`` ("data", "result", "value"): decoded from ``{field}_json``, or
    plain ``{field}`` as older records (and schedule ticks) hold it.

    Raises:
        InvalidRecord: ``{field}_json`` is not JSON text.
    """
    text = raw.get(f"{field}_json")
    if not isinstance(text, str):
        return raw.get(field)
    return decode_json(text, f"{field}_json")


# 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads differently.
_LONG_DIGITS = re.compile(r"\d{19}")


def decode_json(text: str, what: str = "value") -> Any:
    """``json.loads(text)``, the same value, but with orjson (5x faster) when it reads the text
    the same: not when it has a run of 19 digits (orjson reads an integer beyond 64 bits as a
    float), and not when orjson refuses it (lone surrogates, NaN: the stdlib takes them).

    Raises:
        InvalidRecord: ``text`` is not JSON.
    """
    if not _LONG_DIGITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRecord(f"{what} is not JSON: {exc}") from None


def _encoded(value: Any) -> str | None:
    return None if value is None else encode_json(value)


def check_data(data: Any, max_bytes: int, what: str = "data", *, keys: bool = False) -> int:
    """Check ``data`` is JSON of at most ``max_bytes`` encoded; return its size.

    ``keys``: also check every key is a Firebase key, for values stored as a tree (a
    schedule's job data) rather than as one encoded string.
    """
    size = len(encode_json(data, what).encode())
    if size > max_bytes:
        raise InvalidJob(f"{what} is {size} bytes, over the {max_bytes}-byte limit")
    if keys:
        _check_keys(data, what)
    return size


def _check_keys(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            check_key(key, f"key in {where}")
            _check_keys(child, where)
    elif isinstance(value, list):
        for child in value:
            _check_keys(child, where)


@dataclass(frozen=True)
class ChainRef:
    """Which chain, and which step of it, a job is."""

    id: str
    step: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step}

    @classmethod
    def from_json(cls, raw: Any) -> ChainRef:
        obj = obj_of(raw, "chain")
        return cls(id=text_of(obj, "id", "chain"), step=int_of(obj, "step"))


@dataclass(frozen=True)
class JobSpec:
    """A job as queued and assigned: everything a cloud needs to run it."""

    id: str
    type: str
    name: str
    data: JSON = None
    timeout: float = 60.0
    submitted: float | None = None  # server time; None until written (server timestamp)
    reply_to: str | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0
    attempt: int = 1
    chain: ChainRef | None = None
    parent: str | None = None
    eta: float | None = None  # server time; only for delayed jobs
    assigned: float | None = None  # set in inbox assignments
    epoch: int | None = None  # the leader epoch that made the assignment
    deaths: int = 0  # clouds that died while holding it (docs/protocol.md, "Dead cloud")

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "id": self.id,
                "type": self.type,
                "name": self.name,
                "data_json": _encoded(self.data),
                "timeout": self.timeout,
                "submitted": render_ms(self.submitted),
                "reply_to": self.reply_to,
                "retries": self.retries or None,
                "retry_backoff": self.retry_backoff if self.retries else None,
                "retry_backoff_max": self.retry_backoff_max if self.retries else None,
                "attempt": self.attempt,
                "chain": self.chain.to_json() if self.chain else None,
                "parent": self.parent,
                "eta": render_ms(self.eta),
                "assigned": render_ms(self.assigned),
                "epoch": self.epoch,
                "deaths": self.deaths or None,
            }
        )

    @classmethod
    def from_json(cls, raw: Any, job_id: str | None = None) -> JobSpec:
        obj = obj_of(raw, "job")
        jid = job_id or text_of(obj, "id", "job")
        reply_to = obj.get("reply_to")
        parent = obj.get("parent")
        # Every cloud and the dispatcher decode each job: the fields most jobs leave out (no
        # retries, chain, parent, eta or deaths) take their defaults without a helper's call.
        return _made(
            cls,
            {
                "id": jid,
                "type": text_of(obj, "type", "job"),
                "name": str(obj.get("name") or jid),
                "data": payload(obj, "data"),
                "timeout": number_of(obj, "timeout", 60.0) or 60.0,
                "submitted": parse_ms(obj.get("submitted")),
                "reply_to": reply_to if isinstance(reply_to, str) and reply_to else None,
                "retries": max(0, int_of(obj, "retries")) if "retries" in obj else 0,
                "retry_backoff": (number_of(obj, "retry_backoff", 1.0) or 1.0)
                if "retry_backoff" in obj
                else 1.0,
                "retry_backoff_max": (number_of(obj, "retry_backoff_max", 300.0) or 300.0)
                if "retry_backoff_max" in obj
                else 300.0,
                "attempt": max(1, int_of(obj, "attempt", 1)),
                "chain": ChainRef.from_json(obj["chain"]) if obj.get("chain") is not None else None,
                "parent": parent if isinstance(parent, str) and parent else None,
                "eta": parse_ms(obj["eta"]) if "eta" in obj else None,
                "assigned": parse_ms(obj.get("assigned")),
                "epoch": int_of(obj, "epoch") if obj.get("epoch") is not None else None,
                "deaths": max(0, int_of(obj, "deaths")) if "deaths" in obj else 0,
            },
        )

    def evolve(self, **changes: Any) -> JobSpec:
        """A copy with some fields changed (``dataclasses.replace`` without its walk over the
        fields nor the frozen ``__init__``: the dispatcher copies each job it assigns)."""
        if not changes.keys() <= _JOB_FIELDS:
            raise TypeError(f"JobSpec has no field {sorted(changes.keys() - _JOB_FIELDS)[0]!r}")
        return _made(JobSpec, {**self.__dict__, **changes})


def _made(cls: type[_Record], fields: dict[str, Any]) -> _Record:
    """An instance of the frozen dataclass ``cls`` holding ``fields`` (every one of its fields),
    made without calling its ``__init__``, which sets each field through
    ``object.__setattr__`` (a JobSpec's 17: 2.7 of its 7 us from JSON, most of a copy's 6.6).
    Only for records whose ``__init__`` does nothing else (no ``__post_init__``)."""
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


_JOB_FIELDS = frozenset(JobSpec.__dataclass_fields__)


@dataclass(frozen=True)
class Finish:
    """How one attempt ended, before deciding what it means for the job (no id or times yet).

    ``retry_asked``: the handler asked for another attempt (``Retry``). It stays in the cloud:
    ``completion.judge`` folds it into the verdict, the error message and ``retry_delay``, so
    the finish an ``Outcome`` carries on the wire never has it.
    """

    ok: bool
    result: JSON = None
    error: dict[str, Any] | None = None  # {kind, message, type, traceback}
    retry_asked: bool = False
    retry_delay: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a job ended with (``live/outcomes/{id}``): its ``Finish``, the
    cloud's verdict (``final``: no other attempt follows; the wire says ``retry`` for not
    final), the job, cloud and attempt, and its times. Written by the cloud that ran it."""

    job_id: str
    cloud: str
    attempt: int
    finish: Finish
    final: bool = True
    replied: bool = False
    started: float | None = None
    finished: float | None = None

    @classmethod
    def of(
        cls,
        spec: JobSpec,
        finish: Finish,
        *,
        cloud: str,
        final: bool = True,
        replied: bool = False,
        started: float | None = None,
        finished: float | None = None,
    ) -> Outcome:
        """The outcome of ``spec``'s current attempt ending with ``finish``."""
        return cls(spec.id, cloud, spec.attempt, finish, final, replied, started, finished)

    @property
    def ok(self) -> bool:
        return self.finish.ok

    @property
    def result(self) -> JSON:
        return self.finish.result

    @property
    def error(self) -> dict[str, Any] | None:
        return self.finish.error

    @property
    def retry_delay(self) -> float | None:
        return self.finish.retry_delay

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "cloud": self.cloud,
                "attempt": self.attempt,
                "ok": self.ok,
                "result_json": _encoded(self.result),
                "error": self.error,
                "retry": (not self.final) or None,
                "retry_delay": self.retry_delay,
                "replied": self.replied or None,
                "started": render_ms(self.started),
                "finished": render_ms(self.finished),
            }
        )

    @classmethod
    def from_json(cls, raw: Any, job_id: str) -> Outcome:
        obj = obj_of(raw, "outcome")
        ok = obj.get("ok")
        if not isinstance(ok, bool):
            raise InvalidRecord("outcome.ok is not a boolean")
        error = obj.get("error")
        # Made field by field, as JobSpec.from_json: the dispatcher decodes every outcome.
        finish = _made(
            Finish,
            {
                "ok": ok,
                "result": payload(obj, "result"),
                "error": error if isinstance(error, dict) else None,
                "retry_asked": False,
                "retry_delay": number_of(obj, "retry_delay"),
            },
        )
        return _made(
            cls,
            {
                "job_id": job_id,
                "cloud": str(obj.get("cloud", "")),
                "attempt": max(1, int_of(obj, "attempt", 1)),
                "finish": finish,
                "final": obj.get("retry") is not True,
                "replied": obj.get("replied") is True,
                "started": parse_ms(obj.get("started")),
                "finished": parse_ms(obj.get("finished")),
            },
        )


@dataclass(frozen=True)
class Reply:
    """The one response a caller gets for a job or a chain."""

    ok: bool
    job: str
    result: JSON = None
    error: dict[str, Any] | None = None

    def to_json(self, result_json: str | None = None) -> dict[str, Any]:
        """``result_json``: ``result`` already encoded (a completion's outcome holds it)."""
        result = _encoded(self.result) if result_json is None else result_json
        return pruned({"ok": self.ok, "job": self.job, "result_json": result, "error": self.error})

    @classmethod
    def from_json(cls, raw: Any) -> Reply:
        obj = obj_of(raw, "reply")
        ok = obj.get("ok")
        if not isinstance(ok, bool):
            raise InvalidRecord("reply.ok is not a boolean")
        error = obj.get("error")
        return cls(
            ok=ok,
            job=str(obj.get("job", "")),
            result=payload(obj, "result"),
            error=error if isinstance(error, dict) else None,
        )


@dataclass(frozen=True)
class ChainStep:
    """One job of a chain, as submitted (later steps take the chain's name)."""

    type: str
    data: JSON = None
    timeout: float | None = None
    callback: bool = False
    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "type": self.type,
                "data_json": _encoded(self.data),
                "timeout": self.timeout,
                "callback": self.callback or None,
                "retries": self.retries or None,
                "retry_backoff": self.retry_backoff if self.retries else None,
                "retry_backoff_max": self.retry_backoff_max if self.retries else None,
            }
        )

    @classmethod
    def from_json(cls, raw: Any) -> ChainStep:
        obj = obj_of(raw, "chain step")
        return cls(
            type=text_of(obj, "type", "chain step"),
            data=payload(obj, "data"),
            timeout=number_of(obj, "timeout"),
            callback=obj.get("callback") is True,
            retries=max(0, int_of(obj, "retries")),
            retry_backoff=number_of(obj, "retry_backoff", 1.0) or 1.0,
            retry_backoff_max=number_of(obj, "retry_backoff_max", 300.0) or 300.0,
        )


@dataclass(frozen=True)
class ChainState:
    """A chain in flight: its steps, where it is, and whether its one reply was sent."""

    id: str
    name: str
    steps: tuple[ChainStep, ...]
    timeout: float
    step: int = 0
    reply_to: str | None = None
    replied: bool = False
    submitted: float | None = None
    parent: str | None = None
    results: dict[str, Any] = field(default_factory=dict)  # step index -> job id, for history

    def to_json(self) -> dict[str, Any]:
        return pruned(
            {
                "name": self.name,
                "steps": [s.to_json() for s in self.steps],
                "timeout": self.timeout,
                "step": self.step,
                "reply_to": self.reply_to,
                "replied": self.replied or None,
                "submitted": render_ms(self.submitted),
                "parent": self.parent,
            }
        )

    @classmethod
    def from_json(cls, raw: Any, chain_id: str) -> ChainState:
        obj = obj_of(raw, "chain")
        steps_raw = obj.get("steps")
        if isinstance(steps_raw, dict):  # Firebase may store a list as an object
            steps_raw = [steps_raw[k] for k in sorted(steps_raw, key=lambda k: int(k))]
        if not isinstance(steps_raw, list) or not steps_raw:
            raise InvalidRecord("chain.steps is not a non-empty list")
        reply_to = obj.get("reply_to")
        parent = obj.get("parent")
        return cls(
            id=chain_id,
            name=str(obj.get("name") or chain_id),
            steps=tuple(ChainStep.from_json(s) for s in steps_raw),
            timeout=number_of(obj, "timeout", 60.0) or 60.0,
            step=max(0, int_of(obj, "step")),
            reply_to=reply_to if isinstance(reply_to, str) and reply_to else None,
            replied=obj.get("replied") is True,
            submitted=parse_ms(obj.get("submitted")),
            parent=parent if isinstance(parent, str) and parent else None,
        )


def epoch_admissible(epoch: int | None, highest_seen: int | None) -> bool:
    """Fencing for clouds: may an assignment stamped ``epoch`` run, given the highest seen?

    A lower epoch comes from a deposed leader's late write; an unstamped one is admissible only
    until a stamped one was seen.
    """
    if epoch is None:
        return highest_seen is None
    return highest_seen is None or epoch >= highest_seen


def chain_step_id(chain_id: str, step: int) -> str:
    """The deterministic job id of a chain's step, so a step can never be created twice."""
    return f"{chain_id}-{step}"
