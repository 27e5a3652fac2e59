"""Who may see the station and who may act through it.

- Bound to loopback with no token: anyone on this machine may look, but only requests whose
  ``Host`` is a loopback name are served (so a DNS-rebinding page cannot read the data).
- Bound anywhere else: a token is required (``settings.station_token``; the station refuses
  to start without one). It arrives once as ``?token=`` (exchanged for an HttpOnly cookie that
  expires after 12 hours, ``Secure`` over TLS, and a redirect that drops it from the address
  bar) or on every request as ``Authorization: Bearer``.
- Every POST must come from the station's own origin (``Origin``, else ``Referer``, matching
  ``Host``) and carry the CSRF token in ``X-CSRF-Token``: the token is only readable by
  same-origin scripts through ``/api/session``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from atmosphere.errors import ConfigError
from atmosphere.hosts import host_name as host_name
from atmosphere.hosts import is_loopback as is_loopback
from atmosphere.settings import Settings

COOKIE = "atmosphere_station"
SESSION_SECONDS = 12 * 3600  # a signed-in browser asks for the token again after this
CSRF_HEADER = "x-csrf-token"
# Reachable without a token even when one is required: liveness probes only.
PUBLIC_PATHS = frozenset({"/healthz"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def require_token_if_exposed(settings: Settings) -> None:
    """Raise ConfigError when the station would bind beyond loopback without a token."""
    if not is_loopback(settings.station_host) and not settings.station_token:
        raise ConfigError(
            f"the Weather Station binds {settings.station_host}, beyond this machine: "
            "set a token (--token or ATMOSPHERE_STATION_TOKEN) or bind 127.0.0.1"
        )


def _mac(key: bytes, purpose: str) -> str:
    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()


class Keys:
    """The secrets one station process uses: its session cookies and CSRF token."""

    def __init__(self, token: str | None, clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.clock = clock
        # With a token, cookies and CSRF tokens survive a restart; without one they need not.
        self._key = token.encode() if token else secrets.token_bytes(32)
        self.csrf = _mac(self._key, "atmosphere-station-csrf")

    def session(self) -> str:
        """A new session cookie value: its expiry time, signed (so it cannot be extended)."""
        expires = int(self.clock()) + SESSION_SECONDS
        return f"{expires}.{_mac(self._key, f'atmosphere-station-session:{expires}')}"

    def token_ok(self, candidate: str | None) -> bool:
        """Constant-time check of a presented token."""
        return bool(self.token and candidate) and hmac.compare_digest(
            str(candidate).encode(), str(self.token).encode()
        )

    def session_ok(self, candidate: str | None) -> bool:
        """Constant-time check of a session cookie, and that it has not expired."""
        expires, _, mac = str(candidate or "").partition(".")
        if not expires.isdigit() or int(expires) <= self.clock():
            return False
        return hmac.compare_digest(mac, _mac(self._key, f"atmosphere-station-session:{expires}"))

    def csrf_ok(self, candidate: str | None) -> bool:
        """Constant-time check of a CSRF token."""
        return bool(candidate) and hmac.compare_digest(str(candidate), self.csrf)


def same_origin(headers: dict[str, str]) -> bool:
    """True when Origin (or, without it, Referer) names the host the request was sent to."""
    host = headers.get("host", "").lower()
    source = headers.get("origin") or headers.get("referer")
    if not host or not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is just "no cookie"
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


class Guard:
    """ASGI middleware enforcing the rules in this module's docstring."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        verdict = self.check(scope, headers)
        if verdict is None:
            await self.app(scope, receive, send)
        else:
            await _reply(send, *verdict)

    def check(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]]] | None:
        """None to let the request through, else (status, text, extra headers)."""
        path = scope.get("path", "")
        if not self.keys.token and not is_loopback(host_name(headers.get("host", ""))):
            return 421, "This station only answers to localhost.", []
        if self.keys.token and path not in PUBLIC_PATHS:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if "token" in query and scope["method"] == "GET":
                return self._exchange(path, query, secure=scope.get("scheme") == "https")
            if not (self.keys.token_ok(_bearer(headers)) or self.keys.session_ok(_cookie(headers))):
                return 401, "Open this page with ?token=<the station token>.", []
        if scope["method"] not in ("GET", "HEAD"):
            if not same_origin(headers):
                return 403, "Cross-site request refused (Origin/Referer does not match Host).", []
            if not self.keys.csrf_ok(headers.get(CSRF_HEADER)):
                return 403, "Missing or wrong CSRF token.", []
        return None

    def _exchange(
        self, path: str, query: dict[str, str], secure: bool
    ) -> tuple[int, str, list[tuple[str, str]]]:
        if not self.keys.token_ok(query.get("token")):
            return 401, "Wrong token.", []
        rest = {k: v for k, v in query.items() if k != "token"}
        location = path + ("?" + urlencode(rest) if rest else "")
        cookie = (
            f"{COOKIE}={self.keys.session()}; Path=/; HttpOnly; SameSite=Strict; "
            f"Max-Age={SESSION_SECONDS}" + ("; Secure" if secure else "")
        )
        return 303, "Signed in.", [("location", location), ("set-cookie", cookie)]


async def _reply(send: Send, status: int, text: str, extra: list[tuple[str, str]]) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ] + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
