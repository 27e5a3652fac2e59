"""The stream listener survives a killed server, a frozen server and a token-protected one."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atmosphere.db.client import FirebaseDatabase
from atmosphere.db.mirror import Mirror
from atmosphere.db.stream import CLOSE_WAIT, Backoff
from atmosphere.errors import PermissionDenied
from atmosphere.testing import EventRecorder
from tests.support import RawClient, ServerProcess, start_db_server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """A private server (tests restart it); the list holds the current process."""
    servers = [start_db_server(tmp_path / "data", extra_args=["--keep-alive", "0.2"])]
    yield servers
    for server in servers:
        if server.proc.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.kill()


def test_listener_survives_kill_9_and_resyncs(own_server: list[ServerProcess]) -> None:
    server = own_server[0]
    db = FirebaseDatabase(server.db_url("r"))
    try:
        db.set("room/a", 1)
        rec = EventRecorder()
        listener = db.listen("room", rec.on_event, on_status=rec.on_status)
        mirror = Mirror(db, "room")
        assert listener.wait_connected(10) and mirror.wait_synced(10)
        server.kill()
        rec.wait(lambda: rec.statuses == [True, False])
        assert not listener.connected

        restarted = start_db_server(
            server.data_dir, extra_args=["--keep-alive", "0.2", "--port", str(server.port)]
        )
        own_server.append(restarted)
        rec.wait(lambda: rec.statuses == [True, False, True])
        assert rec.events[-1] == ("put", "/", {"a": 1})  # the resync
        db.set("room/b", 2)
        rec.wait(lambda: rec.events[-1] == ("put", "/b", 2))
        assert mirror.wait_for(lambda tree: tree == {"a": 1, "b": 2}, 10)
        assert mirror.wait_synced(10)
    finally:
        db.close()


def test_silent_stream_is_detected_and_reconnected(own_server: list[ServerProcess]) -> None:
    server = own_server[0]
    db = FirebaseDatabase(server.db_url("s"), idle_timeout=1.0)
    try:
        rec = EventRecorder()
        listener = db.listen("x", rec.on_event, on_status=rec.on_status)
        assert listener.wait_connected(10)
        os.kill(server.pid, signal.SIGSTOP)  # the socket stays open but no byte arrives
        try:
            rec.wait(lambda: rec.statuses == [True, False])
        finally:
            os.kill(server.pid, signal.SIGCONT)
        rec.wait(lambda: rec.statuses[-1] is True)
        db.set("x", "back")
        rec.wait(lambda: rec.events[-1] == ("put", "/", "back"))
        assert listener.connected
    finally:
        db.close()


def test_secret_token_is_sent_on_requests_and_streams(tmp_path: Path) -> None:
    server = start_db_server(tmp_path / "t", token="s3cret-token")
    try:
        db = FirebaseDatabase(server.db_url("t"), token="s3cret-token")
        rec = EventRecorder()
        listener = db.listen("p", rec.on_event)
        assert listener.wait_connected(10)
        db.set("p", {"q": 1})
        rec.wait(lambda: rec.events[-1] == ("put", "/", {"q": 1}))
        db.close()
        outsider = FirebaseDatabase(server.db_url("t"))  # "owner" is no admin here
        try:
            with pytest.raises(PermissionDenied):
                outsider.set("p", 2)
        finally:
            outsider.close()
    finally:
        server.stop()


def test_cancel_on_revoked_read_then_back_when_allowed(db_server: ServerProcess, ns: str) -> None:
    admin = FirebaseDatabase(db_server.db_url(ns))
    user = FirebaseDatabase(
        db_server.db_url(ns), auth_override={"uid": "u1"}, backoff=Backoff(0.05, 0.3)
    )
    allow = {"rules": {"p": {".read": "auth != null", ".write": "auth != null"}}}
    raw = RawClient(db_server.url, ns)
    try:
        raw.put("/.settings/rules.json", allow).raise_for_status()
        admin.set("p", 1)
        rec = EventRecorder()
        listener = user.listen("p", rec.on_event, on_status=rec.on_status)
        assert listener.wait_connected(10)
        raw.put("/.settings/rules.json", {"rules": {}}).raise_for_status()
        rec.wait(lambda: rec.statuses == [True, False])
        assert listener.last_error is not None and "Permission denied" in listener.last_error
        admin.set("p", 2)  # missed while denied
        raw.put("/.settings/rules.json", allow).raise_for_status()
        rec.wait(lambda: rec.statuses == [True, False, True])
        assert rec.events == [("put", "/", 1), ("put", "/", 2)]
    finally:
        user.close()
        admin.close()


def test_closing_a_stream_whose_callback_hangs_returns_and_closing_the_database_too(
    db_server: ServerProcess, ns: str
) -> None:
    # A default cloud runs its handler on its inbox stream's thread: a hung handler there
    # must not hang the process closing its database (a drain after its grace, SIGTERM).
    db = FirebaseDatabase(db_server.db_url(ns))
    release = threading.Event()
    entered = threading.Event()

    def hang(kind: str, path: str, data: object) -> None:
        if path != "/":  # past the initial snapshot: the "handler" that never ends
            entered.set()
            release.wait(30)

    try:
        listener = db.listen("jobs", hang)
        assert listener.wait_connected(10)
        db.set("jobs/a", 1)
        assert entered.wait(10)
        started = time.monotonic()
        closer = threading.Thread(target=listener.close)  # as a drain closes it, on the side
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
        db.close()  # closes nothing twice: the listener is no longer its to close
        assert time.monotonic() - started < 3 * CLOSE_WAIT
    finally:
        release.set()
        db.close()


def test_closed_listeners_are_let_go(db_server: ServerProcess, ns: str) -> None:
    # A cloud opens a new inbox stream each time a handler lends its slot: they must not pile up.
    db = FirebaseDatabase(db_server.db_url(ns))
    try:
        for _ in range(20):
            listener = db.listen("jobs", lambda *_: None)
            assert listener.wait_connected(10)
            listener.close()
        assert db._listeners == []
        kept = db.listen("jobs", lambda *_: None)
        assert db._listeners == [kept]
    finally:
        db.close()
