"""Conformance checklist 54-62: streaming (Server-Sent Events)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from firebase_admin import exceptions

from tests.support import RawClient, ServerProcess, SseStream, sdk_app, wait_until

SDK_THREAD_NOISE = pytest.mark.filterwarnings(
    # firebase-admin's listener thread raises when close() pulls the response from under it.
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)


def _stats(raw: RawClient) -> dict[str, int]:
    r = raw.get("/.settings/stats.json")
    assert r.status_code == 200
    stats: dict[str, int] = r.json()
    return stats


def test_54_headers_and_initial_put(raw: RawClient, sse: Callable[..., SseStream]) -> None:
    raw.put("/a.json", {"x": 1})
    stream = sse("/a.json")
    assert stream.status == 200
    assert stream.response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert stream.next() == ("put", {"path": "/", "data": {"x": 1}})
    empty = sse("/nothing.json")
    assert empty.next() == ("put", {"path": "/", "data": None})


@SDK_THREAD_NOISE
def test_55_write_right_after_listen_is_delivered(sdk_db: Callable[[str], Any]) -> None:
    events: queue.Queue[Any] = queue.Queue()
    for attempt in range(2):
        ref = sdk_db(f"l{attempt}")
        reg = ref.listen(events.put)
        ref.child("k").set(attempt)  # no pause: the subscription must already exist
        first, second = events.get(timeout=5), events.get(timeout=5)
        reg.close()
        assert (first.event_type, first.path, first.data) == ("put", "/", None)
        assert (second.event_type, second.path, second.data) == ("put", "/k", attempt)


def test_56_writes_below_and_patch_at_the_location(
    raw: RawClient, sse: Callable[..., SseStream]
) -> None:
    stream = sse("/l.json")
    assert stream.next() == ("put", {"path": "/", "data": None})
    raw.put("/l/users/u1.json", {"n": 1})
    assert stream.next() == ("put", {"path": "/users/u1", "data": {"n": 1}})
    name = raw.request("POST", "/l/users.json", body=b'""').json()["name"]
    assert stream.next() == ("put", {"path": f"/users/{name}", "data": ""})
    raw.request("DELETE", "/l/users/u1.json")
    assert stream.next() == ("put", {"path": "/users/u1", "data": None})
    raw.request("PATCH", "/l.json", body=b'{"a":1,"b":null}')
    assert stream.next() == ("patch", {"path": "/", "data": {"a": 1}})
    raw.request("PATCH", "/l/users.json", body=b'{"x":2}')
    assert stream.next() == ("patch", {"path": "/users", "data": {"x": 2}})
    raw.request("PATCH", "/l.json", body=b'{"deep/er":3}')
    assert stream.next() == ("patch", {"path": "/", "data": {"deep/er": 3}})
    # a PATCH far above the listener sends only what it covers, as one event
    raw.request("PATCH", "/.json", body=b'{"l/p/q":4,"l/r":5,"elsewhere":6}')
    assert stream.next() == ("patch", {"path": "/", "data": {"p/q": 4, "r": 5}})


def test_57_writes_above_unrelated_and_other_namespaces(
    raw: RawClient, sse: Callable[..., SseStream], db_server: ServerProcess
) -> None:
    raw.put("/a/l.json", 1)
    stream = sse("/a/l.json")
    assert stream.next() == ("put", {"path": "/", "data": 1})
    raw.put("/a.json", {"l": {"z": 2}, "other": 1})
    assert stream.next() == ("put", {"path": "/", "data": {"z": 2}})
    raw.put("/a/other.json", 5)  # unrelated
    raw.put("/a.json", {"l": {"z": 2}, "other": 6})  # above, but L unchanged
    other = RawClient(db_server.url, raw.ns + "x")
    other.put("/a/l.json", "elsewhere")
    other.close()
    raw.request("PATCH", "/a/l.json", body=b'{"z":3}')  # the next event must be this one
    assert stream.next() == ("patch", {"path": "/", "data": {"z": 3}})


def test_58_commit_order_no_loss_no_duplicates(
    db_server: ServerProcess, ns: str, sse: Callable[..., SseStream]
) -> None:
    per_writer = 40
    started = threading.Event()

    def writer(w: int) -> None:
        client = RawClient(db_server.url, ns)
        for k in range(per_writer):
            client.put(f"/c/w{w}.json", k)
            if w == 0 and k == 5:
                started.set()
        client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    assert started.wait(10)
    stream = sse("/c.json")  # opened mid-way: snapshot, then every later change
    for t in threads:
        t.join()
    name, first = stream.next()
    assert name == "put" and first["path"] == "/"
    mirror = dict(first["data"] or {})
    last_seen = {k: v for k, v in mirror.items()}
    while mirror != {f"w{w}": per_writer - 1 for w in range(8)}:
        name, event = stream.next()
        assert name == "put"
        key = event["path"].strip("/")
        # each writer's values arrive in order, exactly once, after the snapshot's value
        assert event["data"] == last_seen.get(key, -1) + 1, (key, event, last_seen.get(key))
        last_seen[key] = event["data"]
        mirror[key] = event["data"]


def test_59_keep_alive_and_framing(raw: RawClient, sse: Callable[..., SseStream]) -> None:
    stream = sse("/k.json")
    assert stream.next() == ("put", {"path": "/", "data": None})
    raw.put("/k.json", {"a": [1, 2], "s": "x y"})
    stream.next()
    name, data = stream.next(timeout=5, skip_keep_alive=False)  # the session server: 1 s
    assert (name, data) == ("keep-alive", None)
    text = b"".join(stream.raw_chunks)
    assert b"\r" not in text
    assert b"event: keep-alive\ndata: null\n\n" in text
    for block in text.split(b"\n\n"):
        if block:
            lines = block.split(b"\n")
            assert len(lines) == 2, block
            assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")


@SDK_THREAD_NOISE
def test_60_non_ascii_through_the_sdk(
    sdk_db: Callable[[str], Any], sse: Callable[..., SseStream]
) -> None:
    events: queue.Queue[Any] = queue.Queue()
    ref = sdk_db("u")
    reg = ref.listen(events.put)
    ref.set("café 日本")
    first, second = events.get(timeout=5), events.get(timeout=5)
    reg.close()
    assert first.data is None
    assert second.data == "café 日本"
    raw_stream = sse("/u.json")
    raw_stream.next()
    assert all(chunk.isascii() for chunk in raw_stream.raw_chunks)


@SDK_THREAD_NOISE
def test_61_many_listeners_disconnects_and_close(
    raw: RawClient, db_server: ServerProcess, ns: str, sdk_db: Callable[[str], Any]
) -> None:
    base = _stats(raw)["listeners"]
    streams = [SseStream(db_server.url, "/many.json", ns) for _ in range(50)]
    try:
        for s in streams:
            assert s.next() == ("put", {"path": "/", "data": None})
        raw.put("/many.json", 7)
        for s in streams:
            assert s.next() == ("put", {"path": "/", "data": 7})
        assert _stats(raw)["listeners"] >= base + 50
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: _stats(raw)["listeners"] <= base, timeout=5, what="listeners freed")
    reg = sdk_db("many").listen(lambda e: None)
    begin = time.monotonic()
    reg.close()
    assert time.monotonic() - begin < 3.0


@SDK_THREAD_NOISE
def test_62_denied_listen(db_server: ServerProcess, raw: RawClient, ns: str) -> None:
    import firebase_admin
    from firebase_admin import db

    raw.request("PUT", "/.settings/rules.json", body=b'{"rules": {"open": {".read": true}}}')
    app = sdk_app(db_server.url, ns, databaseAuthVariableOverride={"uid": "u1"})
    try:
        with pytest.raises(exceptions.UnauthenticatedError, match="Permission denied"):
            db.reference("closed", app=app).listen(lambda e: None)
        reg = db.reference("open", app=app).listen(lambda e: None)
        reg.close()
    finally:
        firebase_admin.delete_app(app)
    stream = SseStream(db_server.url, "/closed.json", ns, auth=None)
    assert stream.status == 401
    assert stream.response.json() == {"error": "Permission denied"}
    stream.close()


def test_cancel_when_rules_revoke_access(raw: RawClient, db_server: ServerProcess, ns: str) -> None:
    raw.request("PUT", "/.settings/rules.json", body=b'{"rules": {"open": {".read": true}}}')
    stream = SseStream(db_server.url, "/open.json", ns, auth=None)
    try:
        assert stream.next() == ("put", {"path": "/", "data": None})
        raw.request("PUT", "/.settings/rules.json", body=b'{"rules": {}}')
        assert stream.next() == ("cancel", "Permission denied")
        assert stream.ended.wait(5)
    finally:
        stream.close()


def test_slow_listener_is_dropped_without_stalling_writers(tmp_path: Any) -> None:
    import socket

    from tests.support import start_db_server

    server = start_db_server(tmp_path, extra_args=["--listener-buffer", "1000000"])
    raw = RawClient(server.url, "slow")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            b"GET /s.json?ns=slow HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
            b"Authorization: Bearer owner\r\n\r\n"
        )
        good = SseStream(server.url, "/s.json", "slow")
        good.next()
        wait_until(lambda: raw.get("/.settings/stats.json").json()["listeners"] == 2, timeout=5)
        blob = "x" * 100_000
        begin = time.monotonic()
        for i in range(100):  # 10 MB for a reader that never reads
            assert raw.put(f"/s/k{i % 10}.json", blob + str(i)).status_code == 200
        assert time.monotonic() - begin < 20
        for i in range(100):
            name, event = good.next(timeout=10)
            assert event["data"] == blob + str(i)
        stats = raw.get("/.settings/stats.json").json()
        assert stats["dropped_listeners"] == 1
        assert stats["listeners"] == 1
        sock.close()
        good.close()
    finally:
        raw.close()
        server.stop()


def test_a_big_location_is_not_a_slow_listener(tmp_path: Any) -> None:
    from tests.support import start_db_server

    server = start_db_server(tmp_path, extra_args=["--listener-buffer", "100000"])
    raw = RawClient(server.url, "big")
    try:
        raw.put("/b.json", {"blob": "y" * 1_000_000}).raise_for_status()
        stream = SseStream(server.url, "/b.json", "big")
        name, first = stream.next(timeout=10)
        assert first["data"]["blob"] == "y" * 1_000_000
        raw.put("/b/x.json", 1)
        assert stream.next() == ("put", {"path": "/x", "data": 1})
        assert raw.get("/.settings/stats.json").json()["dropped_listeners"] == 0
        stream.close()
    finally:
        raw.close()
        server.stop()


@SDK_THREAD_NOISE
def test_listen_with_an_override_holding_a_space(
    db_server: ServerProcess, raw: RawClient, ns: str
) -> None:
    import firebase_admin
    from firebase_admin import db

    rules = b'{"rules": {"r": {".read": "auth != null && auth.name === \'a b\'"}}}'
    raw.request("PUT", "/.settings/rules.json", body=rules)
    app = sdk_app(db_server.url, ns, databaseAuthVariableOverride={"name": "a b"})
    try:
        events: queue.Queue[Any] = queue.Queue()
        reg = db.reference("r", app=app).listen(events.put)  # form-encoded: "a+b"
        assert events.get(timeout=5).data is None
        reg.close()
        assert db.reference("r", app=app).get() is None  # requote_uri: "a%20b"
    finally:
        firebase_admin.delete_app(app)
