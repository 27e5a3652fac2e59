"""Conformance checklist 63-65, plus the secret token and the loopback-only default."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from firebase_admin import exceptions

from tests.support import (
    RawClient,
    ServerProcess,
    SseStream,
    sdk_app,
    start_db_server,
    unique_ns,
)

RULES_WITH_COMMENTS = b"""{
  // users may read and write only their own record
  "rules": {
    "users": {
      "$uid": {
        ".read": "auth != null && $uid === auth.uid",
        ".write": "auth != null && $uid === auth.uid",
        ".validate": "newData.hasChild('name')"
      }
    },
    /* anyone may read the board */
    "board": {".read": true}
  }
}"""


def test_63_emulator_host_variable_and_namespaces(
    db_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import firebase_admin
    from firebase_admin import db

    project = unique_ns("proj")
    monkeypatch.setenv("FIREBASE_DATABASE_EMULATOR_HOST", f"127.0.0.1:{db_server.port}")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    app = firebase_admin.initialize_app(
        options={"databaseURL": f"https://{project}.firebaseio.com"}, name=project
    )
    try:
        db.reference("hello", app=app).set("world")
    finally:
        firebase_admin.delete_app(app)
    monkeypatch.delenv("FIREBASE_DATABASE_EMULATOR_HOST")
    assert RawClient(db_server.url, project).get("/hello.json").json() == "world"
    assert RawClient(db_server.url, project + "-other").get("/hello.json").json() is None
    http_app = sdk_app(db_server.url, project)
    try:
        assert db.reference("hello", app=http_app).get() == "world"
    finally:
        firebase_admin.delete_app(http_app)


def test_63_missing_ns_is_the_default_namespace(db_server: ServerProcess) -> None:
    owner = {"Authorization": "Bearer owner"}
    r = requests.put(f"{db_server.url}/dflt.json", data=b"1", headers=owner, timeout=10)
    assert r.status_code == 200
    assert RawClient(db_server.url, "atmosphere").get("/dflt.json").json() == 1
    requests.delete(f"{db_server.url}/dflt.json", headers=owner, timeout=10)


@pytest.fixture
def user_app(db_server: ServerProcess, ns: str) -> Iterator[Any]:
    import firebase_admin

    app = sdk_app(db_server.url, ns, databaseAuthVariableOverride={"uid": "user1"})
    try:
        yield app
    finally:
        firebase_admin.delete_app(app)


def test_64_rules_endpoint_round_trip(raw: RawClient) -> None:
    r = raw.request("PUT", "/.settings/rules.json", body=RULES_WITH_COMMENTS)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    got = raw.get("/.settings/rules.json", query="format=strict")
    assert got.status_code == 200
    assert got.json()["rules"]["board"] == {".read": True}
    bad = raw.request("PUT", "/.settings/rules.json", body=b'{"rules": {".read": "auth ==="}}')
    assert bad.status_code == 400
    assert bad.json()["error"]
    assert raw.get("/.settings/rules.json").json() == got.json()
    anonymous = RawClient(raw.base_url, raw.ns, auth=None)
    assert anonymous.get("/.settings/rules.json").status_code == 401
    assert anonymous.request("PUT", "/.settings/rules.json", body=b"{}").status_code == 401


def test_64_rules_judge_overridden_auth(raw: RawClient, user_app: Any, ns: str) -> None:
    from firebase_admin import db

    raw.request("PUT", "/.settings/rules.json", body=RULES_WITH_COMMENTS)
    raw.put("/users/user2.json", {"name": "two"})  # owner bypasses the rules
    mine = db.reference("users/user1", app=user_app)
    mine.set({"name": "one"})
    assert mine.get() == {"name": "one"}
    with pytest.raises(exceptions.UnauthenticatedError, match="Permission denied"):
        db.reference("users/user2", app=user_app).get()
    with pytest.raises(exceptions.UnauthenticatedError, match="Permission denied"):
        db.reference("users/user2", app=user_app).set({"name": "x"})
    with pytest.raises(exceptions.UnauthenticatedError):
        mine.set({"no_name": 1})  # .validate
    assert raw.get("/users.json").json() == {"user1": {"name": "one"}, "user2": {"name": "two"}}
    anonymous = raw.get("/board.json", query="auth_variable_override=null")
    assert anonymous.status_code == 200
    denied = raw.get("/users/user1.json", query="auth_variable_override=null")
    assert denied.status_code == 401
    assert denied.json() == {"error": "Permission denied"}


def test_64_no_rules_means_admin_only(raw: RawClient) -> None:
    anonymous = RawClient(raw.base_url, raw.ns, auth=None)
    assert anonymous.get("/x.json").status_code == 401
    assert anonymous.put("/x.json", 1).status_code == 401
    assert RawClient(raw.base_url, raw.ns, auth="not-a-token").get("/x.json").status_code == 401
    assert raw.get("/x.json").json() is None


def test_64_patch_checks_every_entry(raw: RawClient) -> None:
    raw.request("PUT", "/.settings/rules.json", body=RULES_WITH_COMMENTS)
    q = "auth_variable_override=%7B%22uid%22:%22user1%22%7D"
    ok = raw.request("PATCH", "/users.json", body=b'{"user1/name":"a"}', query=q)
    assert ok.status_code == 200
    both = raw.request(
        "PATCH", "/users.json", body=b'{"user1/name":"b","user2":{"name":"c"}}', query=q
    )
    assert both.status_code == 401
    assert raw.get("/users.json").json() == {"user1": {"name": "a"}}


def test_65_one_post_one_child(sdk_db: Any) -> None:
    ref = sdk_db("posts")
    for _ in range(20):
        ref.push({"v": 1})
    assert len(ref.get(shallow=True)) == 20


def test_secret_token(tmp_path: Path) -> None:
    server = start_db_server(tmp_path, token="s3cret")
    try:
        ns = "tok"
        owner = RawClient(server.url, ns, auth="owner")
        assert owner.put("/a.json", 1).status_code == 401
        secret = RawClient(server.url, ns, auth="s3cret")
        assert secret.put("/a.json", 1).status_code == 200
        anonymous = RawClient(server.url, ns, auth=None)
        assert anonymous.get("/a.json", query="auth=s3cret").json() == 1
        assert anonymous.get("/a.json", query="access_token=s3cret").json() == 1
        assert anonymous.get("/a.json", query="auth=wrong").status_code == 401
        assert anonymous.get("/.settings/rules.json", query="auth=s3cret").status_code == 200
    finally:
        server.stop()


def test_token_from_the_environment(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "ATMOSPHERE_DB_TOKEN": "envtok", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "atmosphere", "db", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        r = requests.get(f"{url}/.json", headers={"Authorization": "Bearer envtok"}, timeout=10)
        assert r.status_code == 200
        r = requests.get(f"{url}/.json", headers={"Authorization": "Bearer owner"}, timeout=10)
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_refuses_non_loopback_without_token(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "atmosphere",
            "db",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in __import__("os").environ.items() if k != "ATMOSPHERE_DB_TOKEN"},
    )
    assert r.returncode == 2
    assert "without a secret token" in r.stderr


def test_65_no_error_after_a_commit_even_when_compaction_fails(tmp_path: Path) -> None:
    # Every commit triggers a compaction, and every compaction fails (its temporary file
    # cannot be created): the writes are durable in the log, so each must still succeed,
    # once, and reach the listeners.
    (tmp_path / "snapshot.json.tmp").mkdir()
    server = start_db_server(tmp_path, extra_args=["--compact-after", "1"])
    try:
        raw = RawClient(server.url, "compact", auth="owner")
        stream = SseStream(server.url, "/posts.json", "compact")
        assert stream.next() == ("put", {"path": "/", "data": None})
        statuses = [
            raw.request("POST", "/posts.json", body=b'{"v":1}').status_code for _ in range(5)
        ]
        assert statuses == [200] * 5
        assert len(raw.get("/posts.json").json()) == 5
        events = [stream.next() for _ in range(5)]
        assert all(kind == "put" for kind, _ in events)
        stream.close()
    finally:
        server.stop()
