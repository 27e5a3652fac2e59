"""The embedded server's HTTP front end under hostile input: bad bytes, foreign Host names,
namespaces, anonymous bodies, slow and numerous clients, squatting, corrupt logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atmosphere.localdb.service import Config, LocalDb, Response
from atmosphere.localdb.store import Store
from tests.support import RawClient, ServerProcess

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
