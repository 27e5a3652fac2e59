"""The hardened fleet runs: the embedded server judges every process by the shipped rules
(``--users``, docs/security.md), each process signed in as its own limited user, and jobs,
chains and retries still complete; a cloud's own credentials cannot forge what is not its."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import atmosphere
from atmosphere.app import Atmosphere
from atmosphere.db.client import FirebaseDatabase
from atmosphere.db.connect import connect
from atmosphere.errors import ConfigError, PermissionDenied
from atmosphere.settings import Secret, Settings
from atmosphere.task import chain
from tests.integration.conftest import FAST_ENV, ROOT, CloudProcess
from tests.integration.dispatcher_support import DispatcherProcess
from tests.integration.hardened_tasks import make_app
from tests.support import ServerProcess, start_db_server

RULES = Path(atmosphere.__file__).parent / "rules" / "database.rules.json"
TASKS = "tests.integration.hardened_tasks"
TYPES = {"echo": True, "first": True, "second": True, "flaky": True}

ADMIN_TOKEN = "admin-" + "a" * 24
DISPATCHER_TOKEN = "dispatcher-d1-" + "d" * 24
CLOUD_TOKEN = "cloud-c1-" + "c" * 24
MAKER_TOKEN = "maker-m1-" + "m" * 24
USERS = {
    DISPATCHER_TOKEN: {"uid": "d1", "token": {"atmosphere": "dispatcher"}},
    CLOUD_TOKEN: {"uid": "c1", "token": {"atmosphere": "cloud"}},
    MAKER_TOKEN: {"uid": "m1", "token": {"atmosphere": "maker", "submits": TYPES, "chains": True}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded server with the shipped rules and one token per process."""
    tmp = tmp_path_factory.mktemp("hardened")
    users = tmp / "users.json"
    users.write_bytes(orjson.dumps(USERS))
    proc = start_db_server(
        tmp / "data", token=ADMIN_TOKEN, extra_args=["--users", str(users), "--rules", str(RULES)]
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def db_url(server: ServerProcess) -> str:
    # The default namespace: only admin-token holders bring another one to life.
    return server.db_url("atmosphere")


@pytest.fixture(scope="module")
def fleet(db_url: str) -> Iterator[tuple[DispatcherProcess, CloudProcess]]:
    """A dispatcher and a cloud, each signed in as its own limited user."""
    dispatcher = DispatcherProcess(
        db_url, ROOT, {**FAST_ENV, "ATMOSPHERE_DB_TOKEN": DISPATCHER_TOKEN}
    )
    cloud = None
    try:
        cloud = CloudProcess(
            TASKS,
            db_url,
            name="hardened-c1",
            env={"ATMOSPHERE_DB_TOKEN": CLOUD_TOKEN, "ATMOSPHERE_DB_UID": "c1"},
        )
        yield dispatcher, cloud
    finally:
        if cloud is not None:
            cloud.kill()
        dispatcher.kill()


def _settings(db_url: str, token: str, uid: str) -> Settings:
    return Settings.from_url(
        db_url, root=ROOT, db_token=Secret(token), db_uid=uid, heartbeat_interval=0.25,
        dead_after=1.5,
    )  # fmt: skip


@pytest.fixture
def maker(db_url: str, fleet: Any) -> Iterator[Atmosphere]:
    """The maker, signed in as the maker user through connect()."""
    settings = _settings(db_url, MAKER_TOKEN, "m1")
    database = connect(settings)
    app = make_app(settings, database)
    try:
        yield app
    finally:
        app.close()
        database.close()


def test_the_cloud_runs_under_its_uid(fleet: tuple[DispatcherProcess, CloudProcess]) -> None:
    _, cloud = fleet
    assert cloud.cloud_id == "c1", cloud.log


def test_an_rpc_job_completes(maker: Atmosphere) -> None:
    assert maker.maker.id == "m1"
    assert maker.tasks["echo"].submit({"n": 1}).get(timeout=20) == {"echo": {"n": 1}}


def test_a_chain_completes(maker: Atmosphere) -> None:
    steps = chain(maker.tasks["first"].s(1), maker.tasks["second"].s())
    result = steps.submit(app=maker).get(timeout=20)
    assert result == {"second": {"first": {"first": 1}}}, result


def test_a_retry_completes(maker: Atmosphere, tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt"
    result = maker.tasks["flaky"].submit(str(marker)).get(timeout=30)
    assert result == {"attempts": 2}
    assert marker.exists()  # the first attempt really failed and asked again


@pytest.fixture
def cloud_db(db_url: str, fleet: Any) -> Iterator[FirebaseDatabase]:
    """The cloud user's own credentials, as a compromised cloud host would hold them."""
    database = connect(_settings(db_url, CLOUD_TOKEN, "c1"))
    try:
        yield database
    finally:
        database.close()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("replies/m1/forged", {"ok": True, "result_json": '"forged"'}),  # a reply to no job of its
        ("live/lease", {"owner": "c1", "epoch": 99, "expires": 9_999_999_999_999}),
        ("live/inbox/c2/stolen", {"id": "stolen", "type": "echo"}),  # another cloud's inbox
        ("live/inbox/c1/assigned", {"id": "assigned", "type": "echo"}),  # assigning itself
    ],
)
def test_a_cloud_cannot_forge(cloud_db: FirebaseDatabase, path: str, value: Any) -> None:
    with pytest.raises(PermissionDenied):
        cloud_db.set(f"{ROOT}/{path}", value)
    with pytest.raises(PermissionDenied):
        cloud_db.update(ROOT, {path: value})


def test_a_cloud_reads_its_own_record_only(cloud_db: FirebaseDatabase) -> None:
    assert cloud_db.get(f"{ROOT}/live/clouds/c1/name") == "hardened-c1"
    for path in ("live/clouds", "live/clouds/c2", "live/lease", "live/queue"):
        with pytest.raises(PermissionDenied):
            cloud_db.get(f"{ROOT}/{path}")


def test_credentials_of_another_uid_are_refused_at_connect(db_url: str) -> None:
    with pytest.raises(ConfigError, match="uid 'c2'"):
        connect(_settings(db_url, CLOUD_TOKEN, "c2"))


def test_a_second_cloud_under_the_same_uid_refuses_to_start(
    db_url: str, maker: Atmosphere, fleet: tuple[DispatcherProcess, CloudProcess]
) -> None:
    env = {**os.environ, **FAST_ENV, "ATMOSPHERE_DB_TOKEN": CLOUD_TOKEN, "ATMOSPHERE_DB_UID": "c1"}
    args = ["cloud", TASKS, "--db-url", db_url, "--root", ROOT, "--name", "twin"]
    twin = subprocess.run(
        [sys.executable, "-m", "atmosphere", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert twin.returncode == 2, twin.stdout + twin.stderr
    assert "error: another cloud is running as uid 'c1'" in twin.stderr
    assert "Traceback" not in twin.stderr
    # The first cloud kept its inbox and record: it still answers.
    assert fleet[1].alive()
    assert maker.tasks["echo"].submit(2).get(timeout=20) == {"echo": 2}


def test_no_process_of_the_fleet_was_refused_anything(
    fleet: tuple[DispatcherProcess, CloudProcess],
) -> None:
    # Last in the module: every write the protocol made above was one the rules grant.
    for proc in fleet:
        assert "Permission denied" not in proc.log, proc.log
        assert proc.alive()
