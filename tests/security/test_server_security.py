"""The embedded server's HTTP front end under hostile input: bad bytes, foreign Host names,
namespaces, anonymous bodies, slow and numerous clients, squatting, corrupt logs."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest

from atmosphere import _redact
from atmosphere._redact import redact
from atmosphere.localdb.hosts import allowed_hosts, host_allowed
from atmosphere.localdb.service import Config, LocalDb, Response
from atmosphere.localdb.store import Store
from tests.support import RawClient, ServerProcess, free_port, start_db_server, wait_until

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


# -- tokens in URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("/a.json?auth=s3cret", "/a.json?auth=***"),
        (
            "/a.json?ns=x&access_token=s3cret&print=silent",
            "/a.json?ns=x&access_token=***&print=silent",
        ),
        ("GET /?token=abc HTTP/1.1", "GET /?token=*** HTTP/1.1"),
        ("url: /x.json?AUTH=s3cret (Caused by", "url: /x.json?AUTH=*** (Caused by"),
        ("/a.json?ns=auth=1", "/a.json?ns=auth=1"),  # a value that merely contains "auth="
        ("no url here", "no url here"),
    ],
)
def test_redact(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_a_failed_stream_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    import requests

    from atmosphere.db.stream import Backoff, StreamListener

    session = requests.Session()
    url = f"http://127.0.0.1:{free_port()}/x.json"  # nothing listens there
    with caplog.at_level(logging.DEBUG, logger="atmosphere.db.stream"):
        listener = StreamListener(
            session, url, lambda *_: None, params={"auth": "s3cret"}, backoff=Backoff(5.0, 5.0)
        )
        try:
            wait_until(lambda: listener.last_error, 10, what="the first failure")
        finally:
            listener.close()
    assert "cannot stream" in caplog.text
    assert "s3cret" not in caplog.text and "s3cret" not in str(listener.last_error)


def test_the_cli_log_handlers_mask_tokens_that_urllib3_logs(
    raw: RawClient, db_server: ServerProcess
) -> None:
    import requests

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("urllib3")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.DEBUG
    try:
        _redact.install(logger)
        requests.get(f"{db_server.url}/x.json?ns={raw.ns}&auth=s3cret", timeout=10).close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert "/x.json?ns=" in out.getvalue()  # the line is there, its token is not
    assert "s3cret" not in out.getvalue()
