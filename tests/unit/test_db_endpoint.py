"""A database URL resolves as firebase-admin resolved it (its test_parse_db_url cases)."""

from __future__ import annotations

from typing import Any

import pytest

from atmosphere.db._endpoint import NO_OVERRIDE, Endpoint, endpoint
from atmosphere.db._order import query_string
from atmosphere.errors import DatabaseError


@pytest.mark.parametrize(
    ("url", "emulator_host", "expected"),
    [
        ("https://acme.firebaseio.com", None, Endpoint("https://acme.firebaseio.com")),
        ("https://acme.firebaseio.com/", None, Endpoint("https://acme.firebaseio.com")),
        (
            "https://acme-1.europe-west1.firebasedatabase.app",
            None,
            Endpoint("https://acme-1.europe-west1.firebasedatabase.app"),
        ),
        (
            "http://localhost:9000/?ns=test",
            None,
            Endpoint("http://localhost:9000", {"ns": "test"}, emulator=True),
        ),
        (
            "http://127.0.0.1:9400?ns=atmosphere",
            "ignored:1",  # an http URL names its emulator itself
            Endpoint("http://127.0.0.1:9400", {"ns": "atmosphere"}, emulator=True),
        ),
        (
            "https://acme.firebaseio.com",
            "localhost:9000",
            Endpoint("http://localhost:9000", {"ns": "acme"}, emulator=True),
        ),
    ],
)
def test_urls_resolve_as_firebase_admin_resolves_them(
    url: str, emulator_host: str | None, expected: Endpoint
) -> None:
    assert endpoint(url, emulator_host) == expected


@pytest.mark.parametrize(
    ("url", "emulator_host"),
    [
        ("", None),
        ("acme.firebaseio.com", None),  # no scheme: no host either
        ("http://localhost:9000", None),  # no ns
        ("http://localhost:9000?ns=a&ns=b", None),
        ("http://localhost:9000?ns=", None),
        ("ftp://acme.firebaseio.com?ns=a", None),
        ("https://acme.firebaseio.com", "http://localhost:9000"),  # host:port, no scheme
    ],
)
def test_urls_firebase_admin_refuses_are_database_errors(
    url: str, emulator_host: str | None
) -> None:
    with pytest.raises(DatabaseError):
        endpoint(url, emulator_host)


@pytest.mark.parametrize(
    ("override", "param"),
    [
        (NO_OVERRIDE, None),
        ({}, None),  # firebase-admin's default: the credential's own auth
        (None, "null"),  # unauthenticated
        ({"uid": "u1", "token": {"a": 1}}, '{"uid":"u1","token":{"a":1}}'),
    ],
)
def test_the_auth_override_is_sent_as_compact_json(override: Any, param: str | None) -> None:
    params = endpoint("http://localhost:9000?ns=x", auth_override=override).params
    assert params.get("auth_variable_override") == param
    assert params["ns"] == "x"


def test_an_auth_override_that_is_no_object_is_refused() -> None:
    with pytest.raises(DatabaseError, match="auth_override"):
        endpoint("http://localhost:9000?ns=x", auth_override="u1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("$key",), "orderBy=%22%24key%22"),
        (("/a/b/",), "orderBy=%22a%2Fb%22"),  # a child path, normalised as the SDK does
        (("$value", 1, 2.5), "endAt=2.5&orderBy=%22%24value%22&startAt=1"),
        (("$key", None, None, "a+b&c#d"), "equalTo=%22a%2Bb%26c%23d%22&orderBy=%22%24key%22"),
        (("n", None, None, 1.5e300, 3), "equalTo=1.5e%2B300&limitToFirst=3&orderBy=%22n%22"),
        (("n", False, None, None, None, 2), "limitToLast=2&orderBy=%22n%22&startAt=false"),
        (("$key", "\U0001f600"), "orderBy=%22%24key%22&startAt=%22%5Cud83d%5Cude00%22"),
    ],
)
def test_query_parameters_are_sorted_json_fully_encoded(
    args: tuple[Any, ...], expected: str
) -> None:
    # Fully encoded: firebase-admin left "+", "&" and "#" as they were, so a bound holding
    # one arrived changed (a space) or cut off.
    assert query_string(*args) == expected
