"""The protocol core: one parsed HTTP request in, one answer out, synchronously.

The httptools server (``protocol.py``) is its front end. Running every request to completion without awaiting makes each write atomic
(no other request interleaves between reading the tree and committing), and lets the fast
server answer from ``data_received`` without creating a task per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from atmosphere import hosts
from atmosphere.rtdb import tree
from atmosphere.rtdb.query import run_query
from atmosphere.rtdb.values import InvalidData

from . import access, identity
from .events import Hub, Listener, Sink
from .messages import (
    Config,
    Header,
    Request,
    Response,
    StreamRequest,
    error,
    etag_header,
    strip_etag,
)
from .query import parse_query
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
from .writes import Writer

__all__ = ["Admitted", "Config", "LocalDb", "Response", "StreamRequest", "error"]

METHODS = frozenset(("GET", "PUT", "POST", "PATCH", "DELETE"))
STATS_PATH = b"/.settings/stats.json"
_NO_RULES = {"rules": {".read": False, ".write": False}}
_CORS_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, PUT, POST, PATCH, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, content-type, if-match, x-firebase-etag"),
    (b"access-control-max-age", b"600"),
]
RULES_PATH_BYTES = RULES_PATH.encode()
_HOSTS_REMEMBERED = 64
FOREIGN_HOST = "This server only answers to localhost and the names it was started with"


def _overridden(headers: dict[bytes, bytes], params: dict[str, str]) -> str:
    """The method a POST stands for (``X-HTTP-Method-Override``), POST without one."""
    override = headers.get(b"x-http-method-override") or params.get(
        "x-http-method-override", ""
    ).encode("latin-1")
    return override.decode("latin-1").upper() if override else "POST"


class _Head(NamedTuple):
    """What a request's head says: the method it stands for, its parameters, its caller."""

    method: str
    params: dict[str, str]
    caller: access.Caller
    streaming: bool


class Admitted(NamedTuple):
    """A write's head judged before its body (``LocalDb.admit``): the largest body to read,
    and the head, which ``handle`` takes instead of working it out (and the host) again."""

    limit: int
    head: _Head | None  # None: an OPTIONS preflight


def _refusal(exc: HttpError | InvalidData | UnicodeError) -> Response:
    if isinstance(exc, HttpError):
        return error(exc.status, exc.message)
    if isinstance(exc, InvalidData):
        return error(400, str(exc))
    return error(400, "Invalid characters in the request")


def _form_value(query: bytes, name: bytes) -> str:
    """A query parameter decoded the form way (``+`` is a space)."""
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == name:
            return unquote_plus(value.decode("latin-1"), errors="strict")
    return ""


class LocalDb:
    """The database service: namespaces, rules, listeners and the REST semantics."""

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.store = store
        self.config = config or Config()
        self.hub = Hub(self.config.listener_buffer)
        self.writer = Writer(store, self.hub)
        self._seen: set[str] = set()
        self._default_rules: Any = None  # parsed once, for stand-ins of unknown namespaces
        # Host headers already judged: every request carries one, and parsing it as an
        # address each time cost ~8 % of the server's CPU per write (bounded: see _check_host).
        self._hosts_judged: dict[bytes | None, bool] = {}
        self.namespace(self.config.default_namespace)  # known to everyone from the start

    # -- entry points ----------------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        admitted: Admitted | None = None,
    ) -> Response | StreamRequest:
        """Answer one request (headers by lower-case name); never raises for bad input.

        ``admitted``: what ``admit`` said of this request's head, if it was asked.
        """
        try:
            if admitted is None:
                self._check_host(headers)
            if raw_path == identity.IDENTITY_PATH:
                return self._identity(method, query)
            answer = self._dispatch(method, raw_path, query, headers, body, admitted)
        except (HttpError, InvalidData, UnicodeError) as exc:
            answer = _refusal(exc)
        answer.headers.extend(self._cors(headers))
        return answer

    def admit(
        self, method: str, raw_path: bytes, query: bytes, headers: dict[bytes, bytes]
    ) -> Response | Admitted:
        """Decide from the request head alone: a refusal, or the largest body to read.

        A write that no rule could grant is refused before its body is read, so an anonymous
        client cannot make the server receive, parse and judge megabytes first; callers the
        rules judge get a smaller body limit than admins.
        """
        try:
            self._check_host(headers)
            head = self._head(method, query, headers)
            if head is None or head.caller.admin:
                return Admitted(self.config.max_body, head)
            ns = self._namespace_for(head)
            if head.method != "GET" and (
                raw_path in (RULES_PATH_BYTES, STATS_PATH)
                or not access.may_write(head.caller, ns, parse_path(raw_path))
            ):
                raise HttpError(401, access.PERMISSION_DENIED)
        except (HttpError, InvalidData, UnicodeError) as exc:
            answer = _refusal(exc)
            answer.headers.extend(self._cors(headers))
            return answer
        return Admitted(min(self.config.max_body, self.config.max_user_body), head)

    def _check_host(self, headers: dict[bytes, bytes]) -> None:
        host = headers.get(b"host")
        allowed = self._hosts_judged.get(host)
        if allowed is None:
            text = None if host is None else host.decode("latin-1")
            allowed = hosts.host_allowed(text, self.config.allowed_hosts)
            if len(self._hosts_judged) >= _HOSTS_REMEMBERED:
                self._hosts_judged.clear()  # a client sending many names gets no more memory
            self._hosts_judged[host] = allowed
        if not allowed:
            raise HttpError(421, FOREIGN_HOST)

    def _cors(self, headers: dict[bytes, bytes]) -> list[Header]:
        """CORS headers for an Origin configured to call us (no browser client needs any)."""
        origin = headers.get(b"origin")
        if origin is None or origin.decode("latin-1") not in self.config.cors_origins:
            return []
        return [(b"access-control-allow-origin", origin), (b"vary", b"origin")]

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
            "writes": self.writer.writes,
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
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        admitted: Admitted | None,
    ) -> Response | StreamRequest:
        head = self._head(method, query, headers) if admitted is None else admitted.head
        if head is None:
            return Response(204, b"", list(_CORS_PREFLIGHT) if self._cors(headers) else [])
        method, params, caller = head.method, head.params, head.caller
        ns = self._namespace_for(head)
        if raw_path == RULES_PATH_BYTES or raw_path == STATS_PATH:
            return self._settings(method, raw_path, caller, ns, body)
        req = Request(method, parse_path(raw_path), params, headers, caller, ns)
        check_common_params(params)
        if method == "GET":
            if head.streaming:
                if not access.can_read(caller, ns, req.path, ns.root):
                    raise HttpError(401, access.PERMISSION_DENIED)
                return StreamRequest(req)
            return self._get(req)
        if method == "PATCH":
            return self.writer.patch(req, body)
        if method == "PUT":
            return self.writer.put(req, body)
        if method == "POST":
            return self.writer.post(req, body)
        return self.writer.delete(req)

    def _head(self, method: str, query: bytes, headers: dict[bytes, bytes]) -> _Head | None:
        """Method, parameters and caller of a request (None: an OPTIONS preflight)."""
        params = parse_params(query)
        if method == "POST":
            method = _overridden(headers, params)
        if method == "OPTIONS":
            return None
        if method not in METHODS:
            raise HttpError(405, f"Method {method} is not supported")
        streaming = method == "GET" and b"text/event-stream" in headers.get(b"accept", b"")
        if streaming and "auth_variable_override" in params:
            # firebase-admin's listen() form-encodes its parameters (a space becomes "+"),
            # unlike its other calls (where "+" is a plus).
            params["auth_variable_override"] = _form_value(query, b"auth_variable_override")
        auth = headers.get(b"authorization")
        caller = access.identify(
            None if auth is None else auth.decode("latin-1"),
            params,
            self.config.token,
            self.config.users,
        )
        return _Head(method, params, caller, streaming)

    def _namespace_for(self, head: _Head) -> Namespace:
        """The namespace asked for; only holders of the admin token bring a new one to life.

        Anyone else asking for one that does not exist reads an empty stand-in judged by the
        default rules, kept nowhere, and may not write to it: no stranger can make the server
        keep namespaces forever.
        """
        name = check_namespace(head.params.get("ns") or self.config.default_namespace)
        if name in self.store.namespaces or head.caller.holds_token:
            return self.namespace(name)
        if head.method != "GET":
            raise HttpError(401, access.PERMISSION_DENIED)
        stand_in = Namespace(name)
        if self.config.default_rules is not None:
            if self._default_rules is None:
                self._default_rules = access.parse_rules(self.config.default_rules)
            stand_in.rules_text, stand_in.rules = self.config.default_rules, self._default_rules
        return stand_in

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
            headers.append(etag_header(current))
            if none_match is not None and strip_etag(none_match) == current:
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

    # -- settings --------------------------------------------------------------------

    def _identity(self, method: str, query: bytes) -> Response:
        """Anyone may ask: the proof shows who holds the key, and gives the key away to no one."""
        key = self.config.identity_key
        if key is None:
            raise HttpError(404, "This server has no identity key")
        nonce = parse_params(query).get("nonce", "")
        if method != "GET" or not identity.valid_nonce(nonce):
            raise HttpError(400, "GET with ?nonce=<16 to 128 hex digits>")
        return Response(200, dump({"proof": identity.proof(key, nonce)}))

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
