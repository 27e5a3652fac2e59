"""Who is asking (admin or an auth object) and what the security rules allow them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from atmosphere.rtdb.values import InvalidData

from .rules import Rules, RulesError
from .store import Namespace

PERMISSION_DENIED = "Permission denied"


@dataclass(frozen=True, slots=True)
class Caller:
    """An admin (rules bypassed) or a rules-judged caller with ``auth`` (None: anonymous)."""

    admin: bool
    auth: dict[str, Any] | None = None
    holds_token: bool = False  # presented the admin token (with an override: judged as auth)


ADMIN = Caller(True, None, True)
ANONYMOUS = Caller(False)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def user_key(token: str) -> str:
    """How a user token is looked up (its digest: a lookup's timing says nothing of it)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identify(
    authorization: str | None,
    params: dict[str, str],
    token: str | None,
    users: Mapping[str, dict[str, Any]] | None = None,
) -> Caller:
    """Decide the caller from the ``Authorization`` header and the query parameters.

    ``users`` maps ``user_key(token)`` to the auth object a user token stands for: such a
    caller is judged by the rules as that auth, and can never become admin.
    """
    bearer = None
    if authorization is not None and authorization[:7].lower() == "bearer ":
        bearer = authorization[7:].strip()
    candidates = [bearer, params.get("auth"), params.get("access_token")]
    if token is None:
        admin = bearer == "owner"
    else:
        admin = any(c is not None and _same(c, token) for c in candidates)
    if not admin:
        for c in candidates if users else ():
            auth = users.get(user_key(c)) if users and c else None
            if auth is not None:
                return Caller(False, auth)
        return ANONYMOUS
    override = params.get("auth_variable_override")
    if override is None:
        return ADMIN
    try:
        auth = orjson.loads(override)
    except orjson.JSONDecodeError as exc:
        raise InvalidData("auth_variable_override must be a JSON object or null") from exc
    if auth is not None and not isinstance(auth, dict):
        raise InvalidData("auth_variable_override must be a JSON object or null")
    return Caller(False, auth, True)


def parse_rules(text: str) -> Any:
    """Parse a rules text; raise InvalidData with the engine's message."""
    try:
        return Rules.parse(text)
    except RulesError as exc:
        raise InvalidData(str(exc)) from exc


def rules_of(ns: Namespace) -> Any:
    """The parsed rules of ``ns`` (None when none are set), parsed once and cached."""
    if ns.rules is None and ns.rules_text is not None:
        ns.rules = Rules.parse(ns.rules_text)
    return ns.rules


def can_read(caller: Caller, ns: Namespace, path: Sequence[str], root: Any) -> bool:
    """Whether ``caller`` may read ``path``."""
    if caller.admin:
        return True
    rules = rules_of(ns)
    if rules is None:
        return False
    try:
        return bool(rules.can_read(list(path), caller.auth, root))
    except Exception:  # noqa: BLE001 - a rule that cannot be evaluated grants nothing
        return False


def can_write(
    caller: Caller, ns: Namespace, paths: Sequence[Sequence[str]], before: Any, after: Any
) -> bool:
    """Whether ``caller`` may make a write touching each of ``paths``."""
    if caller.admin:
        return True
    rules = rules_of(ns)
    if rules is None:
        return False
    try:
        return all(rules.can_write(list(p), caller.auth, before, after) for p in paths)
    except Exception:  # noqa: BLE001 - a rule that cannot be evaluated grants nothing
        return False


def may_write(caller: Caller, ns: Namespace, path: Sequence[str]) -> bool:
    """Whether ``caller`` could be allowed any write at or below ``path`` (before the body)."""
    if caller.admin:
        return True
    rules = rules_of(ns)
    return rules is not None and bool(rules.may_write(list(path)))


def index_on(ns: Namespace, path: Sequence[str]) -> list[str]:
    """The ``.indexOn`` entries at ``path``."""
    rules = rules_of(ns)
    return list(rules.index_on(list(path))) if rules is not None else []
