"""The values passed between the front ends and the protocol core: config, requests, answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from atmosphere.rtdb.values import MAX_BODY_BYTES

from . import access
from .store import Namespace

Header = tuple[bytes, bytes]


@dataclass(frozen=True)
class Config:
    """Server behaviour switches."""

    token: str | None = None  # the secret admin token; None: ``Bearer owner`` is admin
    default_namespace: str = "atmosphere"
    max_body: int = MAX_BODY_BYTES
    max_user_body: int = 4 * 1024 * 1024  # for callers judged by the rules (not admins)
    keep_alive: float = 30.0
    default_rules: str | None = None  # rules text for namespaces that have none
    strict_indexes: bool = False  # require ``.indexOn`` for child/value queries
    listener_buffer: int = 32 * 1024 * 1024  # queued bytes after which a slow stream is dropped
    # Host names answered besides loopback ones (hosts.allowed_hosts); None: any name.
    allowed_hosts: frozenset[str] | None = frozenset()
    cors_origins: frozenset[str] = frozenset()  # browser origins allowed to call (none needs to)
    # Per peer address (every local process shares 127.0.0.1: the whole fleet counts as one).
    max_client_connections: int = 1024
    idle_timeout: float = 120.0  # seconds a connection may wait for its next request
    request_timeout: float = 60.0  # seconds from a request's first byte to its last
    # user_key(token) -> the auth object that token stands for (``--users FILE``)
    users: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    identity_key: str | None = None  # proves this server owns its data directory (identity.py)


@dataclass(slots=True)
class Response:
    """A complete answer; ``headers`` exclude the ones the front end adds (length, type)."""

    status: int
    body: bytes = b""
    headers: list[Header] = field(default_factory=list)


@dataclass(slots=True)
class Request:
    """One parsed data request."""

    method: str
    path: list[str]
    params: dict[str, str]
    headers: dict[bytes, bytes]
    caller: access.Caller
    ns: Namespace

    def header(self, name: bytes) -> str | None:
        """A header value as text."""
        v = self.headers.get(name)
        return None if v is None else v.decode("latin-1")

    @property
    def silent(self) -> bool:
        """``print=silent``."""
        return self.params.get("print") == "silent"

    @property
    def pretty(self) -> bool:
        """``print=pretty``."""
        return self.params.get("print") == "pretty"


@dataclass(slots=True)
class StreamRequest:
    """A permitted ``text/event-stream`` GET; the front end calls ``LocalDb.subscribe``."""

    request: Request
    headers: list[Header] = field(default_factory=list)  # added to the stream's head


class PreconditionFailed(Exception):
    """An ``if-match`` that does not match: answer 412 with this ETag and value."""

    def __init__(self, etag: str, value: Any) -> None:
        super().__init__(etag)
        self.etag = etag
        self.value = value


def error(status: int, message: str) -> Response:
    """Firebase's ``{"error": message}``."""
    return Response(status, orjson.dumps({"error": message}))


def strip_etag(v: str) -> str:
    """The entity tag in an ``if-match``/``if-none-match`` value, quoted, weak or bare.

    Only a *quoted* tag can carry the weak prefix (``W/"..."``): our tags are base64, so a bare
    one may itself begin with ``W/`` (one value in 4,096), and stripping that would make the
    server refuse its own ETag for that value forever.
    """
    v = v.strip()
    if v.startswith('W/"'):
        v = v[2:]
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
    return v


def etag_header(value: str) -> Header:
    return (b"etag", value.encode("ascii"))
