"""The hot-path transport goes through the HTTPS proxy the environment names, as requests would."""

from __future__ import annotations

import pytest

from atmosphere.db._http import RestTransport, _proxy_for


class _Token:
    valid = True
    token = "t"


def test_https_proxy_from_the_environment_is_used_with_a_connect_tunnel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _proxy_for("https", "acme.firebaseio.com") == ("proxy.example", 3128)
    transport = RestTransport("https://acme.firebaseio.com", {}, _Token(), 5.0)
    conn = transport._new_connection()
    assert (conn.host, conn.port) == ("proxy.example", 3128)
    assert conn._tunnel_host == "acme.firebaseio.com"  # type: ignore[attr-defined]
    assert conn._tunnel_port == 443  # type: ignore[attr-defined]


def test_no_proxy_and_plain_http_connect_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", ".firebaseio.com")
    assert _proxy_for("https", "acme.firebaseio.com") is None
    local = RestTransport("http://127.0.0.1:9400", {"ns": "x"}, _Token(), 5.0)
    conn = local._new_connection()
    assert (conn.host, conn.port) == ("127.0.0.1", 9400)
    assert conn._tunnel_host is None  # type: ignore[attr-defined]
