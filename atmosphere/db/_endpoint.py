"""Where a database URL points: the base URL, the query parameters every request carries, and
whether it is an emulator (no Google credential: the fixed token ``owner``).

Pure, and the same rules firebase-admin applies (``db._DatabaseService.get_client``), so a URL
means what it meant when the SDK resolved it: ``https://<name>.firebaseio.com`` is real
Firebase unless ``FIREBASE_DATABASE_EMULATOR_HOST`` names an emulator (then ``ns`` is the
URL's first DNS label); ``http://host:port?ns=<name>`` is an emulator or the embedded server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from atmosphere.errors import DatabaseError

NO_OVERRIDE: Any = object()  # no databaseAuthVariableOverride given: the credential's own auth


@dataclass(frozen=True)
class Endpoint:
    """A resolved database URL."""

    base_url: str  # scheme://host[:port]
    params: dict[str, str] = field(default_factory=dict)  # sent on every request
    emulator: bool = False


def endpoint(
    database_url: str, emulator_host: str | None = None, auth_override: Any = NO_OVERRIDE
) -> Endpoint:
    """Resolve ``database_url`` (raises DatabaseError for one firebase-admin would refuse).

    ``auth_override``: the auth the rules judge (firebase-admin's
    ``databaseAuthVariableOverride``); None acts as unauthenticated, ``{}`` as no override.
    """
    parts = urlsplit(database_url)
    if not parts.netloc:
        raise DatabaseError(f"invalid database URL {database_url!r}: no host")
    if parts.scheme != "https":
        ns = parse_qs(parts.query).get("ns")
        if parts.scheme != "http" or not ns or len(ns) != 1 or not ns[0]:
            raise DatabaseError(
                f"invalid database URL {database_url!r}: use https://<name>.firebaseio.com "
                "or http://host:port?ns=<name>"
            )
        found = Endpoint(f"http://{parts.netloc}", {"ns": ns[0]}, emulator=True)
    elif emulator_host:
        if "//" in emulator_host:
            raise DatabaseError(
                f"emulator host {emulator_host!r} must be host:port "
                "(FIREBASE_DATABASE_EMULATOR_HOST)"
            )
        label = parts.netloc.split(".")[0]
        found = Endpoint(f"http://{emulator_host}", {"ns": label}, emulator=True)
    else:
        found = Endpoint(f"https://{parts.netloc}")
    if auth_override is not NO_OVERRIDE and auth_override != {}:
        if auth_override is not None and not isinstance(auth_override, dict):
            raise DatabaseError(f"auth_override must be a dict or None, not {auth_override!r}")
        override = json.dumps(auth_override, separators=(",", ":"))
        found.params["auth_variable_override"] = override
    return found
