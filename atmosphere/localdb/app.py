"""The ASGI application: Firebase's REST + streaming protocol over a Store (raw ASGI, for speed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import access, tree
from .events import KEEP_ALIVE, Hub, Listener
from .pushid import PushIdGenerator
from .query import parse_query, run_query
from .request import (
    RULES_PATH,
    BodyTooLarge,
    Disconnected,
    HttpError,
    Receive,
    Scope,
    Send,
    check_common_params,
    check_namespace,
    dump,
    headers_of,
    parse_params,
    parse_path,
    read_body,
    respond,
    respond_error,
)
from .store import Namespace, Store
from .values import InvalidData, is_valid_key, normalise, parse_json, resolve

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
BAD_PATCH = (
    "Invalid data; couldn't parse JSON object. Are you sending a JSON object with valid key names?"
)
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"access-control-allow-origin", b"*"),
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


def _strip_etag(v: str) -> str:
    v = v.strip()
    if v.startswith("W/"):
        v = v[2:]
    return v.strip('"')


class LocalDbApp:
    """The ASGI callable."""

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.store = store
        self.config = config or Config()
        self.hub = Hub(self.config.listener_buffer)
        self.push_ids = PushIdGenerator()
        self._seen: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._handle(scope, receive, send)
        except HttpError as exc:
            await respond_error(send, exc.status, exc.message)
        except InvalidData as exc:
            await respond_error(send, 400, str(exc))
        except BodyTooLarge:
            await respond_error(send, 413, f"Request body exceeds {self.config.max_body} bytes")
        except (Disconnected, UnicodeDecodeError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                await respond_error(send, 400, "Invalid UTF-8 in the request")

    def namespace(self, name: str) -> Namespace:
        """The namespace, with the default rules applied on first sight."""
        ns = self.store.namespace(name)
        if name not in self._seen:
            self._seen.add(name)
            if ns.rules_text is None and self.config.default_rules is not None:
                ns.rules_text = self.config.default_rules
        return ns

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        params = parse_params(scope.get("query_string", b""))
        method = scope["method"]
        if method == "POST":
            override = (
                headers.get(b"x-http-method-override")
                or params.get("x-http-method-override", "").encode()
            )
            if override:
                method = override.decode("latin-1").upper()
        if method == "OPTIONS":
            await respond(send, 204, b"", _CORS_PREFLIGHT)
            return
        if method not in METHODS:
            raise HttpError(405, f"Method {method} is not supported")
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_body:
            raise BodyTooLarge()
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        auth = headers.get(b"authorization")
        caller = access.identify(
            None if auth is None else auth.decode("latin-1"), params, self.config.token
        )
        ns = self.namespace(check_namespace(params.get("ns") or self.config.default_namespace))
        if raw_path == RULES_PATH.encode():
            await self._rules(method, caller, ns, receive, send)
            return
        if raw_path == STATS_PATH:
            if not caller.admin:
                raise HttpError(401, access.PERMISSION_DENIED)
            await respond(send, 200, dump(self.stats()))
            return
        path = parse_path(raw_path)
        check_common_params(params)
        req = Request(method, path, params, headers, caller, ns)
        if method == "GET":
            await read_body(receive, self.config.max_body)
            accept = headers.get(b"accept", b"")
            if b"text/event-stream" in accept:
                await self._stream(req, receive, send)
            else:
                await self._get(req, send)
            return
        body = await read_body(receive, self.config.max_body)
        if method == "DELETE":
            await self._delete(req, send)
        elif method == "PATCH":
            await self._patch(req, body, send)
        elif method == "PUT":
            await self._put(req, body, send)
        else:
            await self._post(req, body, send)

    # -- reads -----------------------------------------------------------------------

    async def _get(self, req: Request, send: Send) -> None:
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
            value = selected if selected is None or not selected else self._view(req, selected)
        else:
            value = self._view(req, node)
        extra: list[tuple[bytes, bytes]] = []
        none_match = req.header(b"if-none-match")
        if none_match is not None or req.header(b"x-firebase-etag") == "true":
            current = tree.etag(node)
            extra.append((b"etag", current.encode("ascii")))
            if none_match is not None and _strip_etag(none_match) == current:
                await respond(send, 304, b"", extra)
                return
        if req.silent:
            await respond(send, 204, b"", extra)
            return
        await respond(send, 200, dump(value, req.pretty), extra)

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

    async def _stream(self, req: Request, receive: Receive, send: Send) -> None:
        ns, path, caller = req.ns, req.path, req.caller
        if not access.can_read(caller, ns, path, ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        check = None if caller.admin else (lambda root: access.can_read(caller, ns, path, root))
        listener = Listener(path, check)
        listener.abort = _transport_aborter(send)
        # Registered before the headers go out: a write right after listen() returns is seen.
        self.hub.add(ns.name, listener, tree.get(ns.root, path))
        watcher = asyncio.ensure_future(_watch_disconnect(receive, listener))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await self._pump(listener, send)
        finally:
            self.hub.remove(ns.name, listener)
            watcher.cancel()

    async def _pump(self, listener: Listener, send: Send) -> None:
        keep_alive = self.config.keep_alive
        while True:
            if not await listener.wait(keep_alive):
                await send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
                continue
            if listener.frames and not listener.overflowed:
                data = listener.take()
                await send({"type": "http.response.body", "body": data, "more_body": True})
            if listener.closed:
                if listener.cancel is not None:
                    await send(
                        {"type": "http.response.body", "body": listener.cancel, "more_body": True}
                    )
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

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
        after = tree.set_many(before, writes)
        if not access.can_write(req.caller, ns, [p for p, _ in writes], before, after):
            raise HttpError(401, access.PERMISSION_DENIED)
        self.store.commit(ns, writes, after)
        # From here on the write is durable: nothing may turn the answer into an error.
        try:
            self.hub.publish(
                ns.name, req.path if entries is not None else writes[0][0], entries, before, after
            )
        except Exception:  # pragma: no cover - a listener bug must not fail the writer
            pass

    def _check_if_match(self, req: Request) -> tuple[bytes, bytes] | None:
        if_match = req.header(b"if-match")
        if if_match is None:
            return None
        node = tree.get(req.ns.root, req.path)
        current = tree.etag(node)
        if _strip_etag(if_match) != current:
            raise _PreconditionFailed(current, tree.render(node))
        return (b"etag", current.encode("ascii"))

    async def _put(self, req: Request, body: bytes, send: Send) -> None:
        value = self._stored(req, body, req.path, _now_ms())
        try:
            self._check_if_match(req)
        except _PreconditionFailed as exc:
            await respond(send, 412, dump(exc.value), [(b"etag", exc.etag.encode("ascii"))])
            return
        want_etag = req.header(b"if-match") is not None or req.header(b"x-firebase-etag") == "true"
        response = b"" if req.silent else dump(tree.render(value), req.pretty)
        extra = [(b"etag", tree.etag(value).encode("ascii"))] if want_etag else None
        self._commit(req, [(req.path, value)])
        await respond(send, 204 if req.silent else 200, response, extra)

    async def _post(self, req: Request, body: bytes, send: Send) -> None:
        if req.header(b"if-match") is not None:
            raise HttpError(400, "if-match is not supported on POST")
        name = self.push_ids.next()
        path = [*req.path, name]
        value = self._stored(req, body, path, _now_ms())
        extra = None
        if req.header(b"x-firebase-etag") == "true":
            extra = [(b"etag", tree.etag(value).encode("ascii"))]
        if value is not None:
            self._commit(req, [(path, value)])
        elif not access.can_write(req.caller, req.ns, [path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        if req.silent:
            await respond(send, 204, b"", extra)
        else:
            await respond(send, 200, dump({"name": name}, req.pretty), extra)

    async def _patch(self, req: Request, body: bytes, send: Send) -> None:
        if req.header(b"if-match") is not None or req.header(b"x-firebase-etag") is not None:
            raise HttpError(400, "ETags are not supported on PATCH")
        data = parse_json(body)
        if type(data) is not dict:
            raise HttpError(400, BAD_PATCH)
        now = _now_ms()
        entries: list[tuple[list[str], Any]] = []
        for key, raw in data.items():
            segments = [s for s in key.split("/") if s]
            if not segments:
                raise HttpError(400, BAD_PATCH)
            for i, s in enumerate(segments):
                if not (s == ".priority" and i == len(segments) - 1):
                    if not is_valid_key(s):
                        raise HttpError(400, BAD_PATCH)
            full = [*req.path, *segments]
            value, has_sv = normalise(raw, len(full))
            if has_sv:
                value = resolve(value, now, tree.get(req.ns.root, full))
            entries.append((segments, value))
        _check_no_overlap([tuple(s) for s, _ in entries])
        if entries:
            self._commit(req, [([*req.path, *s], v) for s, v in entries], entries)
        if req.silent:
            await respond(send, 204, b"")
            return
        echo = {"/".join(s): tree.render(v) for s, v in entries}
        await respond(send, 200, dump(echo, req.pretty))

    async def _delete(self, req: Request, send: Send) -> None:
        try:
            etag_header = self._check_if_match(req)
        except _PreconditionFailed as exc:
            await respond(send, 412, dump(exc.value), [(b"etag", exc.etag.encode("ascii"))])
            return
        if tree.get(req.ns.root, req.path) is not None:
            self._commit(req, [(req.path, None)])
        elif not access.can_write(req.caller, req.ns, [req.path], req.ns.root, req.ns.root):
            raise HttpError(401, access.PERMISSION_DENIED)
        extra = [etag_header] if etag_header is not None else None
        if req.header(b"x-firebase-etag") == "true":
            extra = [(b"etag", tree.NULL_ETAG.encode("ascii"))]
        await respond(send, 204 if req.silent else 200, b"" if req.silent else b"null", extra)

    # -- rules -----------------------------------------------------------------------

    async def _rules(
        self, method: str, caller: access.Caller, ns: Namespace, receive: Receive, send: Send
    ) -> None:
        body = await read_body(receive, self.config.max_body)
        if not caller.admin:
            raise HttpError(401, access.PERMISSION_DENIED)
        if method == "GET":
            rules = access.rules_of(ns)
            value = rules.to_json() if rules is not None else _NO_RULES
            await respond(send, 200, dump(value))
        elif method == "PUT":
            text = body.decode("utf-8")
            parsed = access.parse_rules(text)
            self.store.set_rules_text(ns, text)
            ns.rules = parsed
            self._recheck_listeners(ns)
            await respond(send, 200, dump({"status": "ok"}))
        else:
            raise HttpError(405, f"Method {method} is not supported on the rules")

    def _recheck_listeners(self, ns: Namespace) -> None:
        for listener in list(self.hub.by_ns.get(ns.name, ())):
            if listener.check is not None and not listener.check(ns.root):
                listener.close("Permission denied")

    def stats(self) -> dict[str, int]:
        """Counters for operators and tests (``GET /.settings/stats.json``, admin only)."""
        return {
            "namespaces": len(self.store.namespaces),
            "listeners": sum(len(group) for group in self.hub.by_ns.values()),
            "dropped_listeners": self.hub.dropped,
        }

    def shutdown(self) -> None:
        """Close every stream so the server can stop."""
        self.hub.close_all()


class _PreconditionFailed(Exception):
    def __init__(self, etag: str, value: Any) -> None:
        super().__init__(etag)
        self.etag = etag
        self.value = value


STATS_PATH = b"/.settings/stats.json"
_NO_RULES = {"rules": {".read": False, ".write": False}}
_CORS_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, PUT, POST, PATCH, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]


def _check_no_overlap(paths: list[tuple[str, ...]]) -> None:
    ordered = sorted(paths)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[: len(a)] == a:
            raise HttpError(
                400,
                f"Invalid data; path /{'/'.join(a)} is an ancestor of another path "
                f"/{'/'.join(b)} in the update",
            )


def _transport_aborter(send: Send) -> Callable[[], None] | None:
    """A function that drops the connection under ``send`` (uvicorn's cycle), if reachable."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _watch_disconnect(receive: Receive, listener: Listener) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            listener.close()
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
