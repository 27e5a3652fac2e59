"""Who may see and act: loopback-only without a token, token exchange, Origin and CSRF checks,
session expiry, and operator actions that cannot apply twice."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from atmosphere.errors import ConfigError, DatabaseError
from atmosphere.settings import Secret, Settings
from atmosphere.station.actions import ActionRefused, discard_job, retry_job
from atmosphere.station.app import create_app
from atmosphere.station.security import (
    COOKIE,
    SESSION_SECONDS,
    Keys,
    host_name,
    is_loopback,
    same_origin,
)
from atmosphere.testing import MemoryDatabase
from tests.unit.station_helpers import ORIGIN, PATHS, csrf, failed_record, station_client

TOKEN = "s3cret-token"
EXPOSED = Settings(station_host="0.0.0.0", station_token=Secret(TOKEN))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.8.0.1", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("localhost.evil.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:3000", "127.0.0.1"),
        ("[::1]:3000", "::1"),
        ("LocalHost", "localhost"),
        ("evil.com:80", "evil.com"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"host": "127.0.0.1:3000", "origin": "http://127.0.0.1:3000"}, True),
        ({"host": "127.0.0.1:3000", "referer": "http://127.0.0.1:3000/#/failed"}, True),
        ({"host": "127.0.0.1:3000", "origin": "http://evil.com"}, False),
        ({"host": "127.0.0.1:3000", "origin": "http://127.0.0.1:3001"}, False),
        ({"host": "127.0.0.1:3000", "origin": "null"}, False),
        ({"host": "127.0.0.1:3000"}, False),  # no Origin and no Referer: refuse
        # Origin wins over a matching Referer
        ({"host": "h:1", "origin": "http://evil.com", "referer": "http://h:1/"}, False),
    ],
)
def test_same_origin(headers: dict[str, str], ok: bool) -> None:
    assert same_origin(headers) is ok


def test_refuses_to_start_exposed_without_a_token() -> None:
    with pytest.raises(ConfigError, match="token"):
        create_app(Settings(station_host="0.0.0.0"), MemoryDatabase())
    create_app(EXPOSED, MemoryDatabase())  # with a token it is fine


def test_without_token_only_loopback_host_names_are_served() -> None:
    db = MemoryDatabase()
    with station_client(db) as client:
        assert client.get("/api/live").status_code == 200
    with station_client(db, base_url="http://localhost:3000") as client:
        assert client.get("/api/live").status_code == 200
    with station_client(db, base_url="http://rebound.evil.com:3000") as client:
        assert client.get("/api/live").status_code == 421  # DNS rebinding cannot read data


def test_token_is_exchanged_once_for_a_cookie() -> None:
    with station_client(MemoryDatabase(), EXPOSED, base_url="http://10.0.0.5:3000") as client:
        assert client.get("/").status_code == 401
        assert client.get("/api/live").status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        assert client.get("/healthz").status_code == 200  # liveness probes need no token
        signed = client.get("/?token=" + TOKEN + "&x=1")
        assert signed.status_code == 303
        assert signed.headers["location"] == "/?x=1"  # the token leaves the address bar
        cookie = signed.headers["set-cookie"]
        assert (
            cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        )
        assert TOKEN not in cookie
        assert client.get("/api/live").status_code == 200  # the cookie jar now carries it


def test_bearer_token() -> None:
    with station_client(MemoryDatabase(), EXPOSED, base_url="http://10.0.0.5:3000") as client:
        assert (
            client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        )
        assert client.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401


def test_posts_need_same_origin_and_csrf_token() -> None:
    db = MemoryDatabase()
    db.set(PATHS.jobs("j1"), failed_record("j1"))
    with station_client(db) as client:
        good = csrf(client)
        url = "/api/jobs/j1/discard"
        assert client.post(url, headers={"x-csrf-token": good["x-csrf-token"]}).status_code == 403
        evil = {**good, "origin": "http://evil.com"}
        assert client.post(url, headers=evil).status_code == 403
        assert client.post(url, headers=ORIGIN).status_code == 403
        assert client.post(url, headers={**ORIGIN, "x-csrf-token": "forged"}).status_code == 403
        assert db.get(PATHS.jobs("j1/state")) == "failed"  # none of those acted
        assert client.post(url, headers=good).status_code == 200
        assert db.get(PATHS.jobs("j1/state")) == "discarded"


def test_csrf_token_differs_between_stations_without_a_token() -> None:
    with station_client(MemoryDatabase()) as a, station_client(MemoryDatabase()) as b:
        assert csrf(a)["x-csrf-token"] != csrf(b)["x-csrf-token"]


def test_pages_carry_a_strict_content_security_policy() -> None:
    with station_client(MemoryDatabase()) as client:
        page = client.get("/")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"


def test_page_scripts_never_parse_strings_as_html() -> None:
    from atmosphere.station.app import STATIC

    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    )
    scripts = sorted((STATIC / "js").glob("*.js"))
    assert scripts
    for script in scripts:
        code = "\n".join(
            line for line in script.read_text().splitlines() if not line.lstrip().startswith("//")
        )
        assert not sinks.search(code), script.name


# -- the session cookie ------------------------------------------------------------------


def _sign_in(client: Any) -> str:
    signed = client.get("/?token=" + TOKEN)
    assert signed.status_code == 303
    cookie: str = signed.headers["set-cookie"]
    return cookie


def test_the_session_cookie_expires() -> None:
    with station_client(MemoryDatabase(), EXPOSED, base_url="http://10.0.0.5:3000") as client:
        cookie = _sign_in(client)
    assert f"Max-Age={SESSION_SECONDS}" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back


def test_the_session_cookie_is_secure_over_tls() -> None:
    with station_client(MemoryDatabase(), EXPOSED, base_url="https://10.0.0.5:3000") as client:
        assert "; Secure" in _sign_in(client)


def test_the_server_refuses_an_expired_or_extended_session() -> None:
    now = [1_000_000.0]
    keys = Keys(TOKEN, clock=lambda: now[0])
    session = keys.session()
    assert keys.session_ok(session)
    expires, mac = session.split(".")
    assert not keys.session_ok(f"{int(expires) + 10**6}.{mac}")  # a forged later expiry
    now[0] += SESSION_SECONDS + 1
    assert not keys.session_ok(session)  # the browser may keep it; the station does not
    assert not keys.session_ok("") and not keys.session_ok("x.y")


# -- retrying a failed job is conditional ------------------------------------------------


class RacingDatabase(MemoryDatabase):
    """A database where something else happens right after the record is first read."""

    def __init__(self, race: Callable[[MemoryDatabase], None]) -> None:
        super().__init__()
        self.race: Callable[[MemoryDatabase], None] | None = race

    def _race(self) -> None:
        race, self.race = self.race, None
        if race is not None:
            race(self)

    def get(self, path: str, *, shallow: bool = False) -> Any:
        value = super().get(path, shallow=shallow)
        self._race()
        return value

    def transaction(self, path: str, fn: Callable[[Any], Any]) -> Any:
        # As the real client does: read, then a write conditional on what was read (here the
        # compare runs on the value current after the race, like a retried compare-and-set).
        super().get(path)
        self._race()
        return super().transaction(path, fn)


def _retried_and_assigned(db: MemoryDatabase) -> None:
    """Another retry wins, the dispatcher assigns the job and it starts running."""
    retry_job(db, PATHS, "j1")
    db.update(
        "",
        {
            PATHS.queue("billing", "j1"): None,
            f"{PATHS.jobs('j1')}/state": "assigned",
            "atmosphere/live/inbox/c1/j1": {"id": "j1", "type": "billing", "attempt": 1},
        },
    )


def test_a_retry_that_lost_the_race_does_not_queue_the_job_again() -> None:
    db = RacingDatabase(_retried_and_assigned)
    db.set(PATHS.jobs("j1"), failed_record("j1"))
    with pytest.raises(ActionRefused) as refused:
        retry_job(db, PATHS, "j1")
    assert refused.value.status == 409
    assert db.get(PATHS.queue("billing", "j1")) is None  # running once, from the inbox only
    assert db.get(PATHS.jobs("j1/state")) == "assigned"


def test_a_discard_that_lost_the_race_to_a_retry_does_nothing() -> None:
    db = RacingDatabase(lambda d: retry_job(d, PATHS, "j1"))
    db.set(PATHS.jobs("j1"), failed_record("j1"))
    with pytest.raises(ActionRefused):
        discard_job(db, PATHS, "j1")
    assert db.get(PATHS.jobs("j1/state")) == "queued"
    assert db.get(PATHS.queue("billing", "j1")) is not None


def test_a_failed_queue_write_puts_the_record_back() -> None:
    class QueueDown(MemoryDatabase):
        def update(self, path: str, values: Any) -> None:
            raise DatabaseError("the queue write failed")

    db = QueueDown()
    db.set(PATHS.jobs("j1"), failed_record("j1"))
    with pytest.raises(DatabaseError):
        retry_job(db, PATHS, "j1")
    assert db.get(PATHS.jobs("j1")) == failed_record("j1")
