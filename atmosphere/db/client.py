"""FirebaseDatabase: the ``Database`` contract over Firebase's REST and streaming protocol.

Every request (reads, queries, writes, transactions and streams) goes through one transport,
``RestTransport`` (_http.py: pooled keep-alive connections that never resend a request the
server may have applied). firebase-admin supplies only the credential (a service account's
or the application default's, refreshed by google-auth); the URL is resolved by the same
rules it applies (_endpoint.py). Several databases can live in one process.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import firebase_admin.credentials
import google.auth.credentials
import google.auth.exceptions
import orjson

from atmosphere.errors import DatabaseError, RequestRefused
from atmosphere.rtdb.keys import plainly_valid_paths, split_path
from atmosphere.rtdb.pushid import PushIdGenerator
from atmosphere.types import JSON

from . import _order
from ._endpoint import NO_OVERRIDE, Endpoint, endpoint
from ._http import RestTransport
from ._tree import check_path, normalise
from .base import BatchCallback, EventCallback, StatusCallback
from .embedded import EmbeddedServer
from .stream import DEFAULT_BACKOFF, Backoff, StreamListener

_TRANSACTION_TRIES = 25


class TokenCredentials(google.auth.credentials.Credentials):
    """A fixed bearer token (the embedded server's secret), never refreshed."""

    def __init__(self, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = token

    def refresh(self, request: Any) -> None:
        """Nothing to refresh: the token does not expire."""


class FirebaseDatabase:
    """A connected Firebase Realtime Database (real, emulator or embedded)."""

    def __init__(
        self,
        database_url: str,
        *,
        credential: Any = None,
        token: str | None = None,
        auth_override: Any = NO_OVERRIDE,
        idle_timeout: float = 60.0,
        http_timeout: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        embedded: EmbeddedServer | None = None,
    ) -> None:
        emulator_host = os.environ.get("FIREBASE_DATABASE_EMULATOR_HOST")
        where = endpoint(database_url, emulator_host, auth_override)
        self.url = database_url
        self.embedded = embedded
        self._idle_timeout = idle_timeout
        self._backoff = backoff
        self._ids = PushIdGenerator()
        self._lock = threading.Lock()
        self._listeners: list[StreamListener] = []
        self._closed = False
        self._credential = _credential_for(where, credential, token, database_url)
        self._rest = RestTransport(where.base_url, where.params, self._credential, http_timeout)

    # -- reads -------------------------------------------------------------------------

    def get(self, path: str, *, shallow: bool = False) -> JSON:
        """The value at ``path`` (None when absent); ``shallow`` gives children as True."""
        data = self._send("GET", path, None, "shallow=true" if shallow else "")
        return orjson.loads(data)  # 2-3x the stdlib on big reads

    def query(
        self,
        path: str,
        *,
        order_by: str,
        start_at: JSON = None,
        end_at: JSON = None,
        equal_to: JSON = None,
        limit_to_first: int | None = None,
        limit_to_last: int | None = None,
    ) -> dict[str, JSON]:
        """Children of ``path`` ordered by ``order_by`` ("$key", "$value" or a child path)."""
        bounds = (start_at, end_at, equal_to, limit_to_first, limit_to_last)
        _order.select(None, order_by, *bounds)  # refuses what Firebase would refuse
        query = _order.query_string(order_by, *bounds)
        result = orjson.loads(self._send("GET", path, None, query))
        return _in_query_order(result, order_by)

    # -- writes ------------------------------------------------------------------------

    def set(self, path: str, value: JSON) -> None:
        """Replace the value at ``path`` (None deletes)."""
        if value is None:
            self.delete(path)
            return
        self._send("PUT", path, encode_json(value), "print=silent")

    def update(self, path: str, values: Mapping[str, JSON]) -> None:
        """Atomic multi-path update: each key is a path below ``path``; None deletes."""
        if not values:
            return
        if not plainly_valid_paths(values):  # one regex over all keys: a cloud's batch has
            for key in values:  # a dozen per job; each key for the error otherwise
                segments = split_path(key)
                if not segments:
                    raise RequestRefused(f"update key {key!r} names no child")
                check_path(segments)
        self._send("PATCH", path, encode_json(dict(values)), "print=silent")

    def push(self, path: str, value: JSON) -> str:
        """Store ``value`` under a new chronological id below ``path``; return the id."""
        if value is None:
            return self.new_id()  # Firebase writes nothing for a null push
        answer = orjson.loads(self._send("POST", path, encode_json(value), ""))
        key = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(key, str):
            raise DatabaseError(f"push to {path!r}: the server answered no id")
        return key

    def delete(self, path: str) -> None:
        """Remove the value at ``path``."""
        self._send("DELETE", path, None, "print=silent")

    def transaction(self, path: str, fn: Callable[[JSON], JSON]) -> JSON:
        """Compare-and-set loop (``fn`` may run several times; None deletes); the value written."""
        # The transport never resends a conditional write after a read error (firebase-admin's
        # session did): one that was applied would come back as a conflict carrying its own
        # result, on which ``fn`` would run a second time.
        _, headers, body = self._send_full("GET", path, None, {"X-Firebase-ETag": "true"})
        data, etag = orjson.loads(body), _etag_of(headers)
        for attempt in range(_TRANSACTION_TRIES):
            new = fn(data)  # the caller's exceptions pass through untouched
            sent = etag
            ok, data, etag = self._write_if_unchanged(path, etag, new)
            if ok:
                return new
            if etag == sent:
                # Retrying cannot help: the server refuses the very tag it just gave us.
                raise DatabaseError(
                    f"transaction on {path!r}: {self.url} refused its own ETag {sent!r} "
                    "(a conditional write it should accept; the server is at fault)"
                )
            if attempt >= 2:  # hot contention: spread the writers out a little
                time.sleep(random.uniform(0, 0.002 * attempt))
        raise DatabaseError(
            f"transaction on {path!r} gave up after {_TRANSACTION_TRIES} tries: "
            "the value changed under every attempt (too many writers at once)"
        )

    def new_id(self) -> str:
        """A fresh push id made on the client (same format and order as the server's)."""
        return self._ids.next()

    # -- streams -----------------------------------------------------------------------

    def listen(
        self,
        path: str,
        on_event: EventCallback,
        *,
        on_status: StatusCallback | None = None,
        on_batch: BatchCallback | None = None,
    ) -> StreamListener:
        """Stream ``path``: an initial put "/" then every change, on a background thread."""
        segments = check_path(split_path(path))
        listener = StreamListener(
            self._rest,
            segments,
            on_event,
            on_status=on_status,
            on_batch=on_batch,
            idle_timeout=self._idle_timeout,
            backoff=self._backoff,
            on_closed=self._forget,
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._listeners.append(listener)
        if closed:
            listener.close()
            raise DatabaseError("the database is closed")
        return listener

    def _forget(self, listener: StreamListener) -> None:
        """A listener closed: let go of it (a cloud opens a new one each time a handler of
        its lends its slot, so they would otherwise pile up)."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def close(self) -> None:
        """Close every listener and connection; stop the embedded server if we started it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        self._rest.close()
        if self.embedded is not None:
            self.embedded.stop()

    def __enter__(self) -> FirebaseDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _send(self, method: str, path: str, body: bytes | None, query: str) -> bytes:
        """One request; its body (see _http.py for what is and is not sent again)."""
        return self._send_full(method, path, body, query=query)[2]

    def _send_full(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str] | None = None,
        *,
        query: str = "",
        accept: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; (status, headers, body); raises on an error status not in ``accept``."""
        if self._closed:
            raise DatabaseError("the database is closed")
        segments = check_path(split_path(path))
        status, answer_headers, data = self._rest.request(method, segments, body, query, headers)
        if status not in accept:
            self._rest.check(method, segments, status, data)
        return status, answer_headers, data

    def _write_if_unchanged(self, path: str, etag: str, new: JSON) -> tuple[bool, JSON, str]:
        """Write ``new`` if ``etag`` still matches: (True, new, _) or (False, current, its etag)."""
        method, body = ("DELETE", None) if new is None else ("PUT", encode_json(new))
        status, headers, data = self._send_full(
            method, path, body, {"if-match": etag, "X-Firebase-ETag": "true"}, accept=(412,)
        )
        if status == 412:
            return False, orjson.loads(data), _etag_of(headers)
        return True, new, etag  # (the new ETag is not needed, nor sent by every server)


def encode_json(value: JSON) -> bytes:
    """Compact JSON bytes, as the SDK would send them but about 10x faster on big values."""
    try:
        body: bytes | None = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an int beyond 64 bits, which the stdlib still writes
        body = None
    # orjson writes NaN and Infinity as null; the stdlib refuses them, as Firebase does. Most
    # nulls are deletions (every completion and assignment has one): a walk rules NaN out
    # in a few us, where encoding again took some 25 us per write.
    if body is None or (b"null" in body and not _finite(value)):
        try:
            return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise RequestRefused(f"value is not JSON: {error}") from None
    return body


def _finite(value: JSON) -> bool:
    """Whether ``value`` holds only JSON types and no NaN or infinity (False: not sure, a
    subclass say). Exact types: ``isinstance`` made the walk three times slower."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            stack.extend(node.values())
        elif kind is str or node is None or kind is int or kind is bool:
            continue
        elif kind is float:
            if not math.isfinite(node):
                return False
        elif kind is list or kind is tuple:
            stack.extend(node)
        else:
            return False
    return True


def _credential_for(
    where: Endpoint, credential: Any, token: str | None, url: str
) -> google.auth.credentials.Credentials:
    """The credential requests are signed with: a fixed token, or a Google one that refreshes.

    ``credential``: a firebase-admin credential (``credentials.Certificate``...), a google-auth
    one, or None for the application default (real Firebase only; an emulator takes "owner").
    """
    if token is not None:
        return TokenCredentials(token)
    if where.emulator:
        return TokenCredentials("owner")
    if credential is None:
        credential = firebase_admin.credentials.ApplicationDefault()
    if not isinstance(credential, firebase_admin.credentials.Base):
        return credential  # type: ignore[no-any-return]
    try:
        return credential.get_credential()  # type: ignore[no-any-return]
    except google.auth.exceptions.GoogleAuthError as error:
        raise DatabaseError(f"cannot connect to {url}: could not authenticate ({error})") from error


def _etag_of(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "etag":
            return value
    raise DatabaseError("the database answered a conditional request without an ETag")


def _in_query_order(result: Any, order_by: str) -> dict[str, JSON]:
    """A query's answer as a dict in Firebase order (JSON objects come back in any order)."""
    if isinstance(result, list):
        items = [(str(i), v) for i, v in enumerate(result) if v is not None]
    elif isinstance(result, Mapping):
        items = list(result.items())
    else:
        return {}
    stored = {k: normalise(v) for k, v in items}
    order = [k for k, _ in _order.select(stored, order_by)]
    values = dict(items)
    return {k: values[k] for k in order}
