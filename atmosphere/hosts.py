"""Which ``Host`` names a local server answers to: the defence against DNS rebinding.

A web page can make its own name resolve to 127.0.0.1 and then talk to a server on this
machine as if it were same-origin; the one thing it cannot change is the ``Host`` header its
browser sends (the page's name). So a server that only answers to the names it is really
reached by is out of the page's reach. The database server and the Weather Station share this.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# Binding one of these listens on every interface: no single name says how clients reach it.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:3000" -> "::1", "a.b:80" -> "a.b")."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_hosts(bind_host: str, token: bool, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The names to answer besides loopback ones; None: any name.

    Any name is accepted only where a secret token guards a server bound to every interface
    and no names were given: there the token, not the name, keeps the admin out of reach.
    """
    names = {host_name(n) for n in extra if n.strip()}
    bind = host_name(bind_host)
    if bind in WILDCARD_ADDRESSES:
        if token and not names:
            return None
    else:
        names.add(bind)
    return frozenset(names)


def host_allowed(host_header: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a request with this Host header may be served.

    A request without one cannot come from a browser (browsers always send it), so it is no
    rebinding attack: any other client could send whatever name it liked anyway.
    """
    if allowed is None or host_header is None:
        return True
    name = host_name(host_header)
    return is_loopback(name) or name in allowed
