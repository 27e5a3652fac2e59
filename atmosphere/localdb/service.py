"""The protocol core: one parsed HTTP request in, one answer out, synchronously.

Both front ends use it: the fast httptools server (``protocol.py``) and the ASGI app
(``app.py``). Running every request to completion without awaiting makes each write atomic
(no other request interleaves between reading the tree and committing), and lets the fast
server answer from ``data_received`` without creating a task per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import access, tree
from .events import Hub, Listener, Sink
from .pushid import PushIdGenerator
from .query import parse_query, run_query
from .request import (
    RULES_PATH,
    HttpError,
    check_common_params,
    check_namespace,
    dump,
    parse_params,
    parse_path,
)
from .store import Namespace, Store
from .values import (
    MAX_STRING_BYTES,
    InvalidData,
    is_valid_key,
    normalise,
    parse_json,
    resolve,
)

METHODS = frozenset(("GET", "PUT", "POST", "PATCH", "DELETE"))
STATS_PATH = b"/.settings/stats.json"
BAD_PATCH = (
    "Invalid data; couldn't parse JSON object. Are you sending a JSON object with valid key names?"
)
Header = tuple[bytes, bytes]
# A string this short is within the 10 MB limit whatever its characters.
_SHORT_STRING = MAX_STRING_BYTES // 4
_NO_RULES = {"rules": {".read": False, ".write": False}}
_CORS_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, PUT, POST, PATCH, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]


@dataclass(frozen=True)
class Config:
    """Server behaviour switches."""

    token: str | None = None  # the secret admin token; None: ``Bearer owner`` is admin
    default_namespace: str = "atmosphere"
    max_body: int = 32 * 1024 * 1024
    keep_alive: float = 30.0
    default_rules: str | None = None  # rules text for namespaces that have none
    strict_indexes: bool = False  # require ``.indexOn`` for child/value queries
    listener_buffer: int = 32 * 1024 * 1024  # queued bytes after which a slow stream is dropped


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


class _PreconditionFailed(Exception):
    def __init__(self, etag: str, value: Any) -> None:
        super().__init__(etag)
        self.etag = etag
        self.value = value


def error(status: int, message: str) -> Response:
    """Firebase's ``{"error": message}``."""
    return Response(status, orjson.dumps({"error": message}))


def _strip_etag(v: str) -> str:
    v = v.strip()
    if v.startswith("W/"):
        v = v[2:]
    return v.strip('"')


def _etag_header(value: str) -> Header:
    return (b"etag", value.encode("ascii"))


def _patch_entry(key: str, raw: Any, base: list[str], now: int, root: Any) -> tuple[list[str], Any]:
    """One PATCH entry as (path below ``base``, stored value); raise HttpError if invalid."""
    segments = [s for s in key.split("/") if s] if "/" in key else [key]
    if not segments:
        raise HttpError(400, BAD_PATCH)
    last = len(segments) - 1
    for i, s in enumerate(segments):
        if not is_valid_key(s) and not (s == ".priority" and i == last):
            raise HttpError(400, BAD_PATCH)
    kind = type(raw)
    if kind is bool or (kind is str and len(raw) <= _SHORT_STRING):
        return segments, raw  # the common case: stored exactly as parsed
    value, has_sv = normalise(raw, len(base) + len(segments))
    if has_sv:
        value = resolve(value, now, tree.get(root, [*base, *segments]))
    return segments, value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_no_overlap(paths: list[tuple[str, ...]]) -> None:
    ordered = sorted(paths)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[: len(a)] == a:
            raise HttpError(
                400,
                f"Invalid data; path /{'/'.join(a)} is an ancestor of another path "
                f"/{'/'.join(b)} in the update",
            )


class LocalDb:
    """The database service: namespaces, rules, listeners and the REST semantics."""

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.store = store
        self.config = config or Config()
        self.hub = Hub(self.config.listener_buffer)
        self.push_ids = PushIdGenerator()
        self._seen: set[str] = set()
        self.writes = 0  # committed write requests, for the jobs benchmark's writes per job

    # -- entry points ----------------------------------------------------------------

    def handle(
        self, method: str, raw_path: bytes, query: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> Response | StreamRequest:
        """Answer one request (headers by lower-case name); never raises for bad input."""
        try:
            return self._dispatch(method, raw_path, query, headers, body)
        except HttpError as exc:
            return error(exc.status, exc.message)
        except InvalidData as exc:
            return error(400, str(exc))
        except UnicodeDecodeError:
            return error(400, "Invalid UTF-8 in the request")

    def subscribe(self, stream: StreamRequest, sink: Sink | None = None) -> Listener:
        """Register a listener and send or queue its initial ``put``.

        With a ``sink`` the response headers must already be written; without one, call this
        right before sending them. Either way no write can slip in between.
        """
        req = stream.request
        ns, path, caller = req.ns, req.path, req.caller
        check: Callable[[Any], bool] | None = None
        if not caller.admin:

            def check(root: Any) -> bool:
                return access.can_read(caller, ns, path, root)

        listener = Listener(path, check)
        listener.ns = ns.name
        listener.sink = sink
        self.hub.add(ns.name, listener, tree.get(ns.root, path))
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        """Forget a listener whose connection ended."""
        self.hub.remove(listener.ns, listener)

    def stats(self) -> dict[str, int]:
        """Counters for operators and tests (``GET /.settings/stats.json``, admin only)."""
        return {
            "namespaces": len(self.store.namespaces),
            "listeners": sum(len(group) for group in self.hub.by_ns.values()),
            "dropped_listeners": self.hub.dropped,
            "writes": self.writes,
        }

    def shutdown(self) -> None:
        """Close every stream."""
        self.hub.close_all()

    def namespace(self, name: str) -> Namespace:
        """The namespace, with the default rules applied on first sight."""
        ns = self.store.namespace(name)
        if name not in self._seen:
            self._seen.add(name)
            if ns.rules_text is None and self.config.default_rules is not None:
                ns.rules_text = self.config.default_rules
                ns.rules_are_default = True
        return ns

    # -- routing ---------------------------------------------------------------------

    def _dispatch(
        self, method: str, raw_path: bytes, query: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> Response | StreamRequest:
        params = parse_params(query)
        if method == "POST":
            override = headers.get(b"x-http-method-override") or params.get(
                "x-http-method-override", ""
            ).encode("latin-1")
            if override:
                method = override.decode("latin-1").upper()
        if method == "OPTIONS":
            return Response(204, b"", list(_CORS_PREFLIGHT))
        if method not in METHODS:
            raise HttpError(405, f"Method {method} is not supported")
        auth = headers.get(b"authorization")
        caller = access.identify(
            None if auth is None else auth.decode("latin-1"), params, self.config.token
        )
        ns = self.namespace(check_namespace(params.get("ns") or self.config.default_namespace))
        if raw_path == RULES_PATH.encode() or raw_path == STATS_PATH:
            return self._settings(method, raw_path, caller, ns, body)
        req = Request(method, parse_path(raw_path), params, headers, caller, ns)
        check_common_params(params)
        if method == "GET":
            if b"text/event-stream" in headers.get(b"accept", b""):
                if not access.can_read(caller, ns, req.path, ns.root):
                    raise HttpError(401, access.PERMISSION_DENIED)
                return StreamRequest(req)
            return self._get(req)
        if method == "PATCH":
            return self._patch(req, body)
        if method == "PUT":
            return self._put(req, body)
        if method == "POST":
            return self._post(req, body)
        return self._delete(req)

    # -- reads -----------------------------------------------------------------------

    def _get(self, req: Request) -> Response:
        if req.header(b"if-match") is not None:
            raise HttpError(400, "if-match is not supported on GET")
        root = req.ns.root
        if not access.can_read(req.caller, req.ns, req.path, root):
            raise HttpError(401, access.PERMISSION_DENIED)
        node = tree.get(root, req.path)
        query = parse_query(req.params)
        if req.params.get("shallow") == "true":
            if query is not None:
                raise HttpError(400, "shallow cannot be mixed with any other query parameters")
            value = tree.shallow(node)
        elif query is not None:
            self._check_index(req, query.order_by)
            selected = run_query(query, node)
            value = selected if not selected else self._view(req, selected)
        else:
            value = self._view(req, node)
        headers: list[Header] = []
        none_match = req.header(b"if-none-match")
        if none_match is not None or req.header(b"x-firebase-etag") == "true":
            current = tree.etag(node)
            headers.append(_etag_header(current))
            if none_match is not None and _strip_etag(none_match) == current:
                return Response(304, b"", headers)
        if req.silent:
            return Response(204, b"", headers)
        return Response(200, dump(value, req.pretty), headers)

    def _view(self, req: Request, node: Any) -> Any:
        return tree.export(node) if req.params.get("format") == "export" else tree.render(node)

    def _check_index(self, req: Request, order_by: str) -> None:
        if not self.config.strict_indexes or order_by in ("$key", "$priority"):
            return
        wanted = ".value" if order_by == "$value" else order_by
        if wanted not in access.index_on(req.ns, req.path):
            where = "/" + "/".join(req.path)
            raise HttpError(
                400,
                f'Index not defined, add ".indexOn": "{wanted}", for path "{where}", to the rules',
            )

    # -- writes ----------------------------------------------------------------------

    def _stored(self, req: Request, body: bytes, path: Sequence[str], now: int) -> Any:
        value, has_sv = normalise(parse_json(body), len(path))
        if has_sv:
            value = resolve(value, now, tree.get(req.ns.root, path))
        return value

    def _commit(
        self,
        req: Request,
        writes: list[tuple[list[str], Any]],
        entries: list[tuple[list[str], Any]] | None = None,
    ) -> None:
        ns = req.ns
        before = ns.root
        if entries is None:
            after = tree.set_many(before, writes)
        else:
            after = tree.update(before, req.path, entries)
        if not access.can_write(req.caller, ns, [p for p, _ in writes], before, after):
            raise HttpError(401, access.PERMISSION_DENIED)
        self.store.commit(ns, writes, after)
        self.writes += 1
        # The write is durable now: nothing below may turn the answer into an error (the SDK
        # retries 500/503, which would apply it twice).
        try:
            where = req.path if entries is not None else writes[0][0]
            self.hub.publish(ns.name, where, entries, before, after)
        except Exception:  # pragma: no cover - a listener bug must not fail the writer
            pass

    def _check_if_match(self, req: Request) -> Header | None:
        if_match = req.header(b"if-match")
        if if_match is None:
            return None
        node = tree.get(req.ns.root, req.path)
        current = tree.etag(node)
        if _strip_etag(if_match) != current:
            raise _PreconditionFailed(current, tree.render(node))
        return _etag_header(current)

    def _put(self, req: Request, body: bytes) -> Response:
        value = self._stored(req, body, req.path, _now_ms())
        try:
            self._check_if_match(req)
        except _PreconditionFailed as exc:
            return Response(412, dump(exc.value), [_etag_header(exc.etag)])
        want_etag = req.header(b"if-match") is not None or req.header(b"x-firebase-etag") == "true"
        answer = b"" if req.silent else dump(tree.render(value), req.pretty)
        headers = [_etag_header(tree.etag(value))] if want_etag else []
        self._commit(req, [(req.path, value)])
        return Response(204 if req.silent else 200, answer, headers)

    def _post(self, req: Request, body: bytes) -> Response:
        if req.header(b"if-match") is not None:
            raise HttpError(400, "if-match is not supported on POST")
        if req.path and req.path[-1] == ".priority":
            raise HttpError(400, "Cannot push below .priority")
        name = self.push_ids.next()
        path = [*req.path, name]
        value = self._stored(req, body, path, _now_ms())
        headers = []
        if req.header(b"x-firebase-etag") == "true":
            headers.append(_etag_header(tree.etag(value)))
        if value is not None:
            self._commit(req, [(path, value)])
        elif not access.can_write(req.caller, req.ns, [path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        if req.silent:
            return Response(204, b"", headers)
        return Response(200, dump({"name": name}, req.pretty), headers)

    def _patch(self, req: Request, body: bytes) -> Response:
        headers = req.headers
        if b"if-match" in headers or b"x-firebase-etag" in headers:
            raise HttpError(400, "ETags are not supported on PATCH")
        data = parse_json(body)
        if type(data) is not dict or (req.path and req.path[-1] == ".priority"):
            raise HttpError(400, BAD_PATCH)
        now = _now_ms()
        base = req.path
        entries = [_patch_entry(key, raw, base, now, req.ns.root) for key, raw in data.items()]
        nested = any(len(segments) > 1 for segments, _ in entries)  # only then can they overlap
        if nested:
            _check_no_overlap([tuple(s) for s, _ in entries])
        answer = Response(204)
        if not req.silent:
            echo = {"/".join(s): tree.render(v) for s, v in entries}
            answer = Response(200, dump(echo, req.pretty))
        if entries:
            self._commit(req, [([*base, *s], v) for s, v in entries], entries)
        return answer

    def _delete(self, req: Request) -> Response:
        try:
            etag_header = self._check_if_match(req)
        except _PreconditionFailed as exc:
            return Response(412, dump(exc.value), [_etag_header(exc.etag)])
        if tree.get(req.ns.root, req.path) is not None:
            self._commit(req, [(req.path, None)])
        elif not access.can_write(req.caller, req.ns, [req.path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        headers = [etag_header] if etag_header is not None else []
        if req.header(b"x-firebase-etag") == "true":
            headers = [_etag_header(tree.NULL_ETAG)]
        if req.silent:
            return Response(204, b"", headers)
        return Response(200, b"null", headers)

    # -- settings --------------------------------------------------------------------

    def _settings(
        self, method: str, raw_path: bytes, caller: access.Caller, ns: Namespace, body: bytes
    ) -> Response:
        if not caller.admin:
            raise HttpError(401, access.PERMISSION_DENIED)
        if raw_path == STATS_PATH:
            return Response(200, dump(self.stats()))
        if method == "GET":
            rules = access.rules_of(ns)
            return Response(200, dump(rules.to_json() if rules is not None else _NO_RULES))
        if method != "PUT":
            raise HttpError(405, f"Method {method} is not supported on the rules")
        text = body.decode("utf-8")
        parsed = access.parse_rules(text)
        self.store.set_rules_text(ns, text)
        ns.rules = parsed
        for listener in list(self.hub.by_ns.get(ns.name, ())):
            if listener.check is not None and not listener.check(ns.root):
                listener.close("Permission denied")
        return Response(200, dump({"status": "ok"}))
