"""The embedded server's HTTP front end under hostile input: bad bytes, foreign Host names,
namespaces, anonymous bodies, slow and numerous clients, squatting, corrupt logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atmosphere.localdb.hosts import allowed_hosts, host_allowed
from atmosphere.localdb.service import Config, LocalDb, Response
from atmosphere.localdb.store import Store
from tests.support import RawClient, ServerProcess, start_db_server

OWNER = {b"authorization": b"Bearer owner", b"host": b"127.0.0.1:9400"}


@pytest.fixture
def core(tmp_path: Path) -> Any:
    store = Store(tmp_path / "core")
    store.open()
    yield LocalDb(store, Config())
    store.close()


def _answer(db: LocalDb, method: str, path: bytes, body: bytes = b"", **headers: bytes) -> Response:
    answer = db.handle(method, path, b"ns=x", {**OWNER, **headers}, body)
    assert isinstance(answer, Response)
    return answer


# -- bad bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PUT", b'"\\ud800"'),
        ("PUT", b'{"\\udfff": 1}'),
        ("PUT", b'{"big": 123456789012345678901234567890, "s": "\\ud800"}'),
        ("PATCH", b'{"x": "\\ud800"}'),
        ("POST", b'["a", "\\udc00b"]'),
        ("PUT", b'"\xed\xa0\x80"'),  # a surrogate encoded as UTF-8 bytes (CESU-8)
    ],
)
def test_a_lone_surrogate_is_a_400_with_the_reason(core: LocalDb, method: str, body: bytes) -> None:
    answer = _answer(core, method, b"/a.json", body)
    assert answer.status == 400
    assert b"surrogate" in answer.body
    assert _answer(core, "GET", b"/a.json").body == b"null"


def test_a_surrogate_pair_is_one_character(core: LocalDb) -> None:
    assert _answer(core, "PUT", b"/a.json", b'"\\ud83d\\ude00"').status == 200
    assert _answer(core, "GET", b"/a.json").body == '"\U0001f600"'.encode()


def test_a_lone_surrogate_through_the_real_server(raw: RawClient, db_server: ServerProcess) -> None:
    r = raw.request("PUT", "/s.json", body=b'{"a": "\\ud800"}')
    assert r.status_code == 400
    assert "surrogate" in r.json()["error"]


# -- DNS rebinding and CORS --------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "token", "extra", "expected"),
    [
        ("127.0.0.1", False, (), frozenset({"127.0.0.1"})),
        ("10.0.0.5", True, (), frozenset({"10.0.0.5"})),
        ("0.0.0.0", True, (), None),  # a token guards a server on every interface
        ("0.0.0.0", True, ("db.internal:9400",), frozenset({"db.internal"})),
        ("0.0.0.0", False, (), frozenset()),
        ("::", True, ("DB.example",), frozenset({"db.example"})),
    ],
)
def test_allowed_hosts(bind: str, token: bool, extra: tuple[str, ...], expected: Any) -> None:
    assert allowed_hosts(bind, token, extra) == expected


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("127.0.0.1:9400", True),
        ("localhost", True),
        ("[::1]:9400", True),
        ("127.0.0.2", True),
        ("evil.example", False),
        ("evil.example:9400", False),
        ("localhost.evil.example", False),
        ("", False),
        (None, True),  # not a browser: browsers always send Host
    ],
)
def test_host_allowed_by_default(header: str | None, ok: bool) -> None:
    assert host_allowed(header, frozenset()) is ok


def test_a_rebound_name_gets_421_and_no_data(raw: RawClient, db_server: ServerProcess) -> None:
    assert raw.put("/secret.json", "s").status_code == 200
    for method in ("GET", "PUT", "DELETE"):
        r = raw.request(method, "/secret.json", body=b'"x"', headers={"Host": "evil.example"})
        assert r.status_code == 421, method
        assert "secret" not in r.text
    assert raw.get("/secret.json", headers={"Host": f"localhost:{db_server.port}"}).json() == "s"


def test_no_cors_unless_an_origin_is_configured(raw: RawClient) -> None:
    origin = {"Origin": "http://evil.example"}
    for r in (
        raw.get("/x.json", headers=origin),
        raw.request("OPTIONS", "/x.json", headers=origin),
        raw.put("/x.json", 1, headers=origin),
    ):
        assert r.status_code in (200, 204)
        assert not any(k.lower().startswith("access-control-") for k in r.headers)


def test_cors_for_a_configured_origin(tmp_path: Path) -> None:
    server = start_db_server(tmp_path, extra_args=["--cors-origin", "http://app.example"])
    try:
        raw = RawClient(server.url, "cors")
        good = raw.get("/x.json", headers={"Origin": "http://app.example"})
        assert good.headers["access-control-allow-origin"] == "http://app.example"
        pre = raw.request("OPTIONS", "/x.json", headers={"Origin": "http://app.example"})
        assert "PUT" in pre.headers["access-control-allow-methods"]
        other = raw.get("/x.json", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        server.stop()


def test_an_extra_host_name_is_answered(tmp_path: Path) -> None:
    server = start_db_server(tmp_path, extra_args=["--allow-host", "db.internal"])
    try:
        raw = RawClient(server.url, "hosts")
        assert raw.get("/x.json", headers={"Host": "db.internal:9400"}).status_code == 200
        assert raw.get("/x.json", headers={"Host": "evil.example"}).status_code == 421
    finally:
        server.stop()
