"""A process signed in as a limited user (docs/security.md): its uid, how connect() asks to be
judged as it, and the cloud and maker ids it gives."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from atmosphere.app import Atmosphere
from atmosphere.db.connect import resolve
from atmosphere.errors import ConfigError
from atmosphere.maker import Maker
from atmosphere.paths import Paths
from atmosphere.settings import Secret, Settings
from atmosphere.testing import MemoryDatabase
from atmosphere.worker.cloud import Cloud
from atmosphere.worker.uid import ensure_uid_free

TOKEN = Secret("cloud-token-" + "k" * 16)
FIREBASE = "https://my-app.firebaseio.com"
CLAIMS = '{"atmosphere": "cloud", "submits": {"sub": true}}'


@pytest.mark.parametrize(
    ("settings", "override"),
    [
        (Settings(db_uid="c1", db_token=TOKEN), None),  # the users file holds the claims
        (Settings(database_url="http://127.0.0.1:1?ns=a", db_uid="c1", db_token=TOKEN), None),
        (
            Settings(database_url=FIREBASE, db_uid="c1", db_claims=CLAIMS),
            {"uid": "c1", "token": {"atmosphere": "cloud", "submits": {"sub": True}}},
        ),
        (Settings(database_url=FIREBASE, db_uid="c1"), {"uid": "c1", "token": {}}),
        (
            Settings(emulator_host="localhost:9000", db_uid="c1", db_claims=CLAIMS),
            {"uid": "c1", "token": {"atmosphere": "cloud", "submits": {"sub": True}}},
        ),
    ],
)
def test_a_limited_user_is_judged_as_its_uid(settings: Settings, override: Any) -> None:
    target = resolve(settings)
    assert target.uid == "c1"
    assert target.auth_override == override


def test_without_a_uid_a_process_stays_admin() -> None:
    for settings in (Settings(), Settings(database_url=FIREBASE)):
        target = resolve(settings)
        assert (target.uid, target.auth_override) == (None, None)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(db_uid="c1"), "needs that user's own token"),
        (Settings(db_uid="c1", db_token=TOKEN, db_claims=CLAIMS), "users file"),
        (Settings(database_url=FIREBASE, db_claims=CLAIMS), "needs ATMOSPHERE_DB_UID"),
        (Settings(database_url=FIREBASE, db_uid="c1", db_claims="{"), "not JSON"),
        (Settings(database_url=FIREBASE, db_uid="c1", db_claims='"cloud"'), "JSON object"),
    ],
)
def test_an_incomplete_identity_is_a_config_error(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(settings)


@pytest.mark.parametrize("uid", ["a/b", "a.b", "", "x#", "c[1]"])
def test_a_uid_must_be_one_database_key(uid: str) -> None:
    with pytest.raises(ConfigError, match="db_uid"):
        Settings(db_uid=uid)


def test_the_uid_and_claims_come_from_the_environment() -> None:
    env = {"ATMOSPHERE_DB_UID": "web-1", "ATMOSPHERE_DB_CLAIMS": CLAIMS}
    settings = Settings.from_env(env)
    assert (settings.db_uid, settings.db_claims) == ("web-1", CLAIMS)


def test_a_maker_takes_the_uid_as_its_id() -> None:
    database = MemoryDatabase()
    assert Maker(database, Paths("atmosphere"), maker_id="web-1").id == "web-1"
    assert len(Maker(database, Paths("atmosphere")).id) == 20  # a fresh push id


@pytest.mark.parametrize(("uid", "limited"), [("c1", True), (None, False)])
def test_an_apps_cloud_and_maker_take_the_uid(uid: str | None, limited: bool) -> None:
    app = Atmosphere("billing", settings=Settings(db_uid=uid), database=MemoryDatabase())
    cloud = Cloud(app)
    # A cloud process's own maker (sub-jobs) answers to the same uid: the rules know no other.
    assert (cloud.id == "c1", app.maker.id == "c1") == (limited, limited)
    assert cloud.id != app.maker.id or limited
    app.close()


class _Reads:
    """A database whose successive reads of one heartbeat give ``values``."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def get(self, path: str) -> Any:
        assert path == "atmosphere/live/clouds/c1/heartbeat"
        return self.values.pop(0)


@pytest.mark.parametrize(
    ("reads", "refused"),
    [
        ((None,), False),  # no record: nothing to wait for
        ((5, 5), False),  # a record left by a crash: its heartbeat stood still
        ((5, None), False),  # removed meanwhile (a clean stop, or the dispatcher)
        ((5, 6), True),  # a live cloud beats under this uid
    ],
)
def test_a_cloud_takes_its_uid_only_from_the_dead(reads: tuple[Any, ...], refused: bool) -> None:
    database = _Reads(*reads)
    record = Paths("atmosphere").clouds("c1")
    if refused:
        with pytest.raises(ConfigError, match="another cloud is running as uid 'c1'"):
            ensure_uid_free(database, record, "c1", 0.01, threading.Event())  # type: ignore[arg-type]
    else:
        ensure_uid_free(database, record, "c1", 0.01, threading.Event())  # type: ignore[arg-type]
    assert database.values == []  # read once, or twice when a record was there


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    database = _Reads(5)
    ensure_uid_free(database, "atmosphere/live/clouds/c1", "c1", 3600.0, stop)  # type: ignore[arg-type]
    assert database.values == []
