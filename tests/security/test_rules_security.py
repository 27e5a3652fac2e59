"""Least privilege: the shipped rules, enforced by the embedded server, give each role exactly
the writes the protocol needs (made here by the protocol's own write builders) and no more."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

import atmosphere
from atmosphere.completion import completion_writes
from atmosphere.jobs import Finish, JobSpec
from atmosphere.localdb.rules import Rules
from atmosphere.paths import Paths
from atmosphere.validate import job_writes
from atmosphere.worker.execution import handback_writes
from tests.support import RawClient, ServerProcess, db_command, start_db_server

RULES = Path(atmosphere.__file__).parent / "rules" / "database.rules.json"
PATHS = Paths("atmosphere")

DISPATCHER = {"uid": "d1", "token": {"atmosphere": "dispatcher"}}
CLOUD_1 = {"uid": "c1", "token": {"atmosphere": "cloud", "submits": {"sub": True}}}
CLOUD_2 = {"uid": "c2", "token": {"atmosphere": "cloud"}}
MAKER_1 = {"uid": "m1", "token": {"atmosphere": "maker", "submits": {"billing": True}}}
STRANGER = {"uid": "x1"}  # a signed-in user of the same project, with no role

MINE = JobSpec(id="j1", type="billing", name="n", data={"a": 1}, reply_to="m1")
THEIRS = JobSpec(id="j2", type="billing", name="n", reply_to="m2")


class Hardened:
    """One namespace running the shipped rules, seeded with j1 assigned to c1, j2 to c2."""

    def __init__(self, server: ServerProcess, ns: str) -> None:
        self.admin = RawClient(server.url, ns)
        r = self.admin.request("PUT", "/.settings/rules.json", body=RULES.read_bytes())
        assert r.status_code == 200, r.text
        seed = {
            "live/inbox/c1/j1": MINE.evolve(assigned=1, epoch=1).to_json(),
            "live/inbox/c2/j2": THEIRS.evolve(assigned=1, epoch=1).to_json(),
            "jobs/j1": {**MINE.to_json(), "state": "assigned", "cloud": "c1"},
            "jobs/j2": {**THEIRS.to_json(), "state": "assigned", "cloud": "c2"},
            "replies/m1/old": {"ok": True, "job": "old"},
            "replies/m2/old": {"ok": True, "job": "old"},
            "live/lease": {"owner": "d1", "epoch": 1, "expires": 1},
        }
        self.patch(None, seed, expect=200)

    def patch(self, who: dict[str, Any] | None, writes: dict[str, Any], expect: int) -> None:
        """One update at the root, as the processes write them, by ``who`` (None: admin)."""
        r = self.admin.request(
            "PATCH", "/atmosphere.json", body=orjson.dumps(writes), query=_as(who)
        )
        assert r.status_code == expect, (who, list(writes), r.text)

    def read(self, who: dict[str, Any] | None, path: str) -> int:
        status: int = self.admin.get(f"/atmosphere/{path}.json", query=_as(who)).status_code
        return status

    def value(self, path: str) -> Any:
        return self.admin.get(f"/atmosphere/{path}.json").json()


def _as(who: dict[str, Any] | None) -> str:
    if who is None:
        return ""
    return "auth_variable_override=" + quote(orjson.dumps(who).decode(), safe="")


@pytest.fixture
def db(db_server: ServerProcess, ns: str) -> Iterator[Hardened]:
    hardened = Hardened(db_server, ns)
    yield hardened
    hardened.admin.close()


def _completion(cloud: str, spec: JobSpec) -> dict[str, Any]:
    writes = completion_writes(
        PATHS, cloud_id=cloud, spec=spec, finish=Finish(ok=True, result=5), started=0.001
    )
    return {**writes, f"live/clouds/{cloud}": {"name": cloud, "heartbeat": 2}}


# -- makers ------------------------------------------------------------------------------


def test_a_maker_submits_its_types_with_replies_to_itself(db: Hardened) -> None:
    spec = JobSpec(id="j3", type="billing", name="n", data=[1], reply_to="m1")
    db.patch(MAKER_1, job_writes(PATHS, spec), expect=200)
    db.patch(MAKER_1, job_writes(PATHS, spec.evolve(id="j4", reply_to=None)), expect=200)
    assert db.value("live/queue/billing/j3")["reply_to"] == "m1"
    assert db.read(MAKER_1, "jobs/j3") == 200  # its own job's record


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(id="j5", type="payroll", name="n"),  # a type its claims do not list
        JobSpec(id="j5", type="billing", name="n", reply_to="m2"),  # a reply to someone else
        JobSpec(id="j1", type="billing", name="n", reply_to="m1"),  # an existing job, again
    ],
)
def test_a_maker_cannot_forge_jobs(db: Hardened, spec: JobSpec) -> None:
    db.patch(MAKER_1, job_writes(PATHS, spec), expect=401)


def test_a_maker_reads_and_deletes_only_its_own_replies(db: Hardened) -> None:
    assert db.read(MAKER_1, "replies/m1") == 200
    assert db.read(MAKER_1, "replies/m2") == 401
    db.patch(MAKER_1, {"replies/m2/old": None}, expect=401)
    db.patch(MAKER_1, {"replies/m1/fake": {"ok": True, "job": "j1"}}, expect=401)
    db.patch(MAKER_1, {"replies/m1/old": None}, expect=200)


@pytest.mark.parametrize(
    "writes",
    [
        {"live/lease": {"owner": "m1", "epoch": 9, "expires": 9}},
        {"live/outcomes/j1": {"cloud": "m1", "ok": True}},
        {"live/inbox/c1/j9": {"id": "j9", "type": "billing"}},
        {"jobs/j1/state": "succeeded"},
        {"live/chains/ch1": {"name": "n", "reply_to": "m1"}},  # chains need their own claim
        {"live/schedules/evil": {"every": 1, "job": {"type": "payroll"}}},
        {"stats/1/billing": {"done": 1}},
    ],
)
def test_a_maker_touches_nothing_else(db: Hardened, writes: dict[str, Any]) -> None:
    db.patch(MAKER_1, writes, expect=401)
    assert db.read(MAKER_1, "live") == 401


# -- clouds ------------------------------------------------------------------------------


def test_a_cloud_completes_the_jobs_in_its_inbox(db: Hardened) -> None:
    db.patch(CLOUD_1, _completion("c1", MINE), expect=200)
    assert db.value("live/inbox/c1/j1") is None
    assert db.value("live/outcomes/j1")["cloud"] == "c1"
    assert db.value("replies/m1/j1")["ok"] is True
    assert db.value("jobs/j1/state") == "succeeded"


def test_a_cloud_hands_back_the_jobs_in_its_inbox(db: Hardened) -> None:
    db.patch(CLOUD_1, handback_writes(PATHS, "c1", [MINE]), expect=200)
    assert db.value("live/queue/billing/j1")["id"] == "j1"


def test_a_cloud_reads_only_its_own_inbox(db: Hardened) -> None:
    assert db.read(CLOUD_1, "live/inbox/c1") == 200
    assert db.read(CLOUD_1, "live/inbox/c2") == 401
    assert db.read(CLOUD_1, "live") == 401


@pytest.mark.parametrize(
    "writes",
    [
        _completion("c1", THEIRS),  # a job in another cloud's inbox
        {"replies/m2/j2": {"ok": True, "job": "j2", "result_json": "6"}},  # a forged reply
        {"replies/m1/j2": {"ok": True, "job": "j2"}},  # j2 is not its job
        {"live/outcomes/j2": {"cloud": "c1", "ok": True}},
        {"live/outcomes/j1": {"cloud": "c2", "ok": True}},  # in another cloud's name
        {"live/clouds/c2": {"name": "c2", "heartbeat": 1}},  # another cloud's record
        {"live/inbox/c1/j2": THEIRS.to_json()},  # assigning itself work
        {"live/inbox/c2/j2": None},  # emptying another inbox
        {"live/lease": {"owner": "c1", "epoch": 9, "expires": 9}},
        {"live/dispatchers/c1": {"seq": "x"}},
        {"jobs/j1/data_json": "{}"},  # only the result fields of its own jobs
        {"live/queue/payroll/j8": JobSpec(id="j8", type="payroll", name="n").to_json()},
    ],
)
def test_a_cloud_cannot_forge(db: Hardened, writes: dict[str, Any]) -> None:
    db.patch(CLOUD_1, writes, expect=401)


def test_a_cloud_submits_sub_jobs_of_its_claimed_types(db: Hardened) -> None:
    sub = JobSpec(id="s1", type="sub", name="n", reply_to="c1", parent="j1")
    db.patch(CLOUD_1, job_writes(PATHS, sub), expect=200)


# -- dispatchers and strangers -----------------------------------------------------------


def test_only_dispatchers_hold_the_lease(db: Hardened) -> None:
    lease = {"live/lease": {"owner": "d2", "epoch": 2, "expires": 5}}
    for who in (CLOUD_2, MAKER_1, STRANGER, {"uid": "d2", "token": {"atmosphere": "cloud"}}):
        db.patch(who, lease, expect=401)
    db.patch({"uid": "d2", "token": {"atmosphere": "dispatcher"}}, lease, expect=200)
    assign = {"live/queue/billing/j1": None, "live/inbox/c2/j1": MINE.to_json()}
    db.patch(DISPATCHER, assign, expect=200)
    assert db.read(DISPATCHER, "") == 200


def test_strangers_and_anonymous_callers_get_nothing(db: Hardened) -> None:
    spec = JobSpec(id="j6", type="billing", name="n")
    for who in (STRANGER, {}):
        db.patch(who, job_writes(PATHS, spec), expect=401)
        assert db.read(who, "jobs/j1") == 401
    anonymous = RawClient(db.admin.base_url, db.admin.ns, auth=None)
    assert anonymous.get("/atmosphere/replies/m1.json").status_code == 401


# -- the rules engine: deciding before the body ------------------------------------------


@pytest.mark.parametrize(
    ("path", "possible"),
    [
        ([], True),  # below the root, some writes are possible
        (["atmosphere"], True),  # the dispatcher may
        (["atmosphere", "live", "lease"], True),
        (["elsewhere"], False),
        (["elsewhere", "deep", "down"], False),
    ],
)
def test_may_write_decides_from_the_rules_alone(path: list[str], possible: bool) -> None:
    rules = Rules.parse(RULES.read_text())
    assert rules.may_write(path) is possible
    assert Rules.deny_all().may_write(path) is False
    assert Rules.allow_all().may_write(path) is True


# -- limited users on the embedded server ------------------------------------------------

CLOUD_TOKEN = "cloud-c1-" + "k" * 24
MAKER_TOKEN = "maker-m1-" + "k" * 24
ADMIN_TOKEN = "admin-" + "a" * 24


@pytest.fixture
def users_server(tmp_path: Path) -> Iterator[ServerProcess]:
    users = tmp_path / "users.json"
    users.write_bytes(orjson.dumps({CLOUD_TOKEN: CLOUD_1, MAKER_TOKEN: MAKER_1}))
    server = start_db_server(
        tmp_path / "data",
        token=ADMIN_TOKEN,
        extra_args=["--users", str(users), "--rules", str(RULES)],
    )
    try:
        yield server
    finally:
        server.stop()


def test_each_process_signs_in_with_its_own_token(users_server: ServerProcess) -> None:
    from atmosphere.db.client import FirebaseDatabase
    from atmosphere.errors import DatabaseError

    ns = "hardened"
    admin = RawClient(users_server.url, ns, auth=ADMIN_TOKEN)
    seed = {"live/inbox/c1/j1": MINE.evolve(assigned=1, epoch=1).to_json()}
    assert admin.request("PATCH", "/atmosphere.json", body=orjson.dumps(seed)).status_code == 200
    cloud = RawClient(users_server.url, ns, auth=CLOUD_TOKEN)
    done = orjson.dumps(_completion("c1", MINE))
    assert cloud.request("PATCH", "/atmosphere.json", body=done).status_code == 200
    lease = orjson.dumps({"live/lease": {"owner": "c1", "epoch": 9, "expires": 9}})
    assert cloud.request("PATCH", "/atmosphere.json", body=lease).status_code == 401
    assert cloud.get("/.settings/rules.json").status_code == 401  # never an admin
    assert RawClient(users_server.url, ns, auth="owner").get("/.json").status_code == 401
    # The maker, through the same client the processes use, with its token as db_token.
    maker = FirebaseDatabase(f"{users_server.url}?ns={ns}", token=MAKER_TOKEN)
    try:
        assert maker.get("atmosphere/replies/m1/j1")["ok"] is True
        with pytest.raises(DatabaseError):
            maker.get("atmosphere/live")
        with pytest.raises(DatabaseError):
            maker.set("atmosphere/live/lease", {"owner": "m1"})
    finally:
        maker.close()


def test_users_need_an_admin_token(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_bytes(orjson.dumps({CLOUD_TOKEN: CLOUD_1}))
    result = subprocess.run(
        db_command(tmp_path / "data", None, ["--users", str(users)]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--users needs --token" in result.stderr
