"""StreamListener protocol handling against a scripted SSE server on a loopback socket.

The scripted server plays the parts the embedded server cannot be made to play on demand
(auth_revoked, malformed events, HTTP errors, CRLF framing, a close-delimited body).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.db._http import RestTransport
from atmosphere.db.client import TokenCredentials
from atmosphere.db.stream import Backoff, StreamListener, reconnect_delay
from atmosphere.testing import EventRecorder
from tests.credentials import CountingCredential
from tests.support import wait_until

Script = Callable[[BaseHTTPRequestHandler, threading.Event], None]
FAST = Backoff(0.01, 0.05)


class ScriptedServer:
    """Serves connection number i with scripts[min(i, last)]; records request headers."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.release = threading.Event()  # ends every held-open stream
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a close-delimited body, no chunking

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                index = len(outer.requests)
                outer.requests.append(dict(self.headers))
                outer.paths.append(self.path)
                outer.scripts[min(index, len(outer.scripts) - 1)](self, outer.release)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def stream(*frames: bytes, hold: bool = True, status: int = 200) -> Script:
    """A script: send headers, then each frame (flushed separately), then hold or close."""

    def run(h: BaseHTTPRequestHandler, release: threading.Event) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "text/event-stream" if status == 200 else "application/json")
        h.end_headers()
        for frame in frames:
            h.wfile.write(frame)
            h.wfile.flush()
        if hold:
            release.wait(30)

    return run


def put(path: str, data: str) -> bytes:
    return f'event: put\ndata: {{"path":"{path}","data":{data}}}\n\n'.encode()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(*scripts: Script) -> ScriptedServer:
        servers.append(ScriptedServer(list(scripts)))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def transport(server: ScriptedServer, params: dict[str, str] | None = None) -> RestTransport:
    return RestTransport(server.url, params or {}, TokenCredentials("owner"), 5.0)


def listen(server: ScriptedServer, rec: EventRecorder, **kwargs: Any) -> StreamListener:
    kwargs.setdefault("backoff", FAST)
    return StreamListener(
        transport(server, {"ns": "n1"}),
        ["a", "b"],
        rec.on_event,
        on_status=rec.on_status,
        **kwargs,
    )


def test_events_request_headers_and_close_delimited_body(
    serve: Callable[..., ScriptedServer],
) -> None:
    frame = b'event: patch\r\ndata: {"path":"/x",\r\ndata: "data":{"y":2}}\r\n\r\n'
    server = serve(
        stream(
            put("/", '{"x":{"y":1}}'),
            b": a comment\n\nevent: keep-alive\ndata: null\n\n",
            frame[:7],
            frame[7:],
            put("/z", '"caf\\u00e9"'),
        )
    )
    rec = EventRecorder()
    listener = listen(server, rec)
    try:
        rec.wait(lambda: len(rec.events) == 3)
        assert rec.events == [
            ("put", "/", {"x": {"y": 1}}),
            ("patch", "/x", {"y": 2}),
            ("put", "/z", "café"),
        ]
        assert rec.statuses == [True] and listener.connected
        assert server.paths == ["/a/b.json?ns=n1"]
        assert server.requests[0]["Accept"] == "text/event-stream"
        assert server.requests[0]["Authorization"] == "Bearer owner"
    finally:
        listener.close()


def test_auth_revoked_refreshes_the_credential_and_reconnects(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(
        stream(put("/", "1"), b"event: auth_revoked\ndata: credential is no longer valid\n\n"),
        stream(put("/", "2")),
    )
    rec = EventRecorder()
    refreshed = threading.Event()
    listener = listen(server, rec, refresh_credential=refreshed.set)
    try:
        rec.wait(lambda: rec.statuses == [True, False, True])
        assert refreshed.is_set()
        assert rec.events == [("put", "/", 1), ("put", "/", 2)]
        assert listener.connections == 2
    finally:
        listener.close()


def test_http_errors_and_malformed_events_are_retried(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(
        stream(b'{"error": "Permission denied"}', status=401, hold=False),
        stream(put("/", "1"), b"event: put\ndata: not json\n\n"),
        stream(b"event: put\ndata: [1]\n\n"),
        stream(put("/", "3")),
    )
    rec = EventRecorder()
    listener = listen(server, rec)
    try:
        rec.wait(lambda: rec.statuses == [True, False, True])
        assert rec.events == [("put", "/", 1), ("put", "/", 3)]
        assert len(server.requests) == 4
    finally:
        listener.close()


def test_cancel_reports_a_drop_and_server_close_reconnects(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(
        stream(put("/", "1"), b'event: cancel\ndata: "Permission denied"\n\n'),
        stream(put("/", "2"), hold=False),  # the server ends the stream
        stream(put("/", "3")),
    )
    rec = EventRecorder()
    listener = listen(server, rec)
    try:
        rec.wait(lambda: rec.statuses == [True, False, True, False, True])
        assert [e[2] for e in rec.events] == [1, 2, 3]
        assert listener.last_error is None
    finally:
        listener.close()


def test_silence_beyond_the_idle_timeout_reconnects(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(stream(put("/", "1")), stream(put("/", "2")))
    rec = EventRecorder()
    listener = listen(server, rec, idle_timeout=0.3)
    try:
        rec.wait(lambda: rec.statuses[:3] == [True, False, True])
        assert rec.events[:2] == [("put", "/", 1), ("put", "/", 2)]
        assert "Timeout" in (listener.last_error or "Timeout")
    finally:
        listener.close()


def test_close_is_prompt_and_final(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(stream(put("/", "1")))
    rec = EventRecorder()
    listener = listen(server, rec)
    assert listener.wait_connected(10)
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < 1.0
    assert not listener.connected
    assert rec.statuses == [True]  # closing is not a drop
    listener.close()  # idempotent


def test_a_failing_callback_does_not_kill_the_stream(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(stream(put("/", "1"), put("/bad", "2"), put("/ok", "3")))
    rec = EventRecorder()

    def on_event(kind: str, path: str, data: Any) -> None:
        rec.on_event(kind, path, data)
        if path == "/bad":
            raise RuntimeError("bug in a handler")

    listener = StreamListener(transport(server), [], on_event)
    try:
        rec.wait(lambda: len(rec.events) == 3)
        assert listener.connections == 1
    finally:
        listener.close()


def redirect(location: str) -> Script:
    """A script: answer 307 to ``location`` (as real Firebase moves a stream to its server)."""

    def run(h: BaseHTTPRequestHandler, release: threading.Event) -> None:
        h.send_response(307)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return run


def test_a_redirect_is_followed_with_the_credential_on_the_same_host(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(redirect("/moved/b.json?ns=n1&x=1"), stream(put("/", "1")))
    rec = EventRecorder()
    listener = listen(server, rec)
    try:
        assert listener.wait_connected(10)
        assert rec.events == [("put", "/", 1)]
        assert server.paths == ["/a/b.json?ns=n1", "/moved/b.json?ns=n1&x=1"]
        assert server.requests[1]["Authorization"] == "Bearer owner"
        assert listener.connections == 1
    finally:
        listener.close()


def test_no_token_is_sent_in_clear_text_to_another_host(
    serve: Callable[..., ScriptedServer],
) -> None:
    elsewhere = serve(stream(put("/", "2")))
    server = serve(redirect(elsewhere.url + "/a/b.json?ns=n1"))
    rec = EventRecorder()
    listener = listen(server, rec)
    try:
        assert listener.wait_connected(10)
        assert rec.events == [("put", "/", 2)]
        assert "Authorization" not in elsewhere.requests[0]
    finally:
        listener.close()


def test_redirects_are_bounded(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(redirect("/a/b.json?ns=n1"))  # to itself, for ever
    rec = EventRecorder()
    listener = listen(server, rec, backoff=Backoff(5.0, 5.0))
    try:
        wait_until(lambda: listener.last_error, 10, what="the first failure")
        assert "too many redirects" in str(listener.last_error)
        assert len(server.requests) == 7  # the request and 6 redirects, then a backoff
    finally:
        listener.close()


def test_an_expired_token_is_refreshed_before_the_stream_opens(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(
        stream(b'{"error": "Auth token is expired"}', status=401, hold=False),
        stream(put("/", "1")),
    )
    rec = EventRecorder()
    credential = CountingCredential()
    rest = RestTransport(server.url, {}, credential, 5.0)
    listener = StreamListener(rest, [], rec.on_event, on_status=rec.on_status, backoff=FAST)
    try:
        assert listener.wait_connected(10)
        assert credential.refreshes == 1
        assert [r["Authorization"] for r in server.requests] == ["Bearer t0", "Bearer t1"]
        assert rec.statuses == [True]  # one connection, no drop reported
    finally:
        listener.close()


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt: int) -> None:
    backoff = Backoff(0.05, 5.0)
    base = min(5.0, 0.05 * 2**attempt)
    assert backoff.delay(attempt, lambda: 0.0) == pytest.approx(base / 2)
    assert backoff.delay(attempt, lambda: 1.0) == pytest.approx(base)
    assert base / 2 <= backoff.delay(attempt) <= base


def gated(first: bytes, second: bytes, gate: threading.Event) -> Script:
    """A script: send ``first`` in one write, wait for ``gate``, send ``second``, hold."""

    def run(h: BaseHTTPRequestHandler, release: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        h.wfile.write(first)
        h.wfile.flush()
        gate.wait(10)
        h.wfile.write(second)
        h.wfile.flush()
        release.wait(30)

    return run


def test_on_batch_follows_the_events_of_each_read(serve: Callable[..., ScriptedServer]) -> None:
    gate = threading.Event()
    first = put("/", "1") + put("/x", "2") + b": keep-alive\n\n" + put("/y", "3")
    server = serve(gated(first, put("/z", "4"), gate))
    rec = EventRecorder()
    listener = listen(server, rec, on_batch=rec.on_batch)
    try:
        rec.wait(lambda: rec.batches == [3])  # one write, one read: one batch after all three
        gate.set()
        rec.wait(lambda: rec.batches == [3, 4])
        assert [path for _, path, _ in rec.events] == ["/", "/x", "/y", "/z"]
    finally:
        listener.close()


def test_a_failing_batch_callback_does_not_kill_the_stream(
    serve: Callable[..., ScriptedServer],
) -> None:
    gate = threading.Event()
    server = serve(gated(put("/", "1"), put("/x", "2"), gate))
    rec = EventRecorder()

    def on_batch() -> None:
        rec.on_batch()
        raise RuntimeError("bug in a batch callback")

    listener = listen(server, rec, on_batch=on_batch)
    try:
        rec.wait(lambda: rec.batches == [1])
        gate.set()
        rec.wait(lambda: rec.batches == [1, 2])
        assert listener.connections == 1
    finally:
        listener.close()


@given(st.integers(0, 60), st.floats(0, 1))
def test_a_refused_connection_is_retried_within_a_quarter_second(attempt: int, r: float) -> None:
    backoff = Backoff(0.05, 5.0)
    assert reconnect_delay(backoff, attempt, False, lambda: r) == backoff.delay(attempt, lambda: r)
    refused = reconnect_delay(backoff, attempt, True, lambda: r)
    assert refused <= 0.25
    assert refused == min(backoff.delay(attempt, lambda: r), 0.125 + 0.125 * r)


def test_a_stream_to_a_server_not_yet_listening_connects_soon_after_it_listens() -> None:
    # A restarting local server: the port refuses connections, then listens. The slow backoff
    # (5 s) is what anything but a refusal would get; a refusal is retried within 0.25 s.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and refusing once closed
    rest = RestTransport(f"http://127.0.0.1:{port}", {}, TokenCredentials("owner"), 5.0)
    rec = EventRecorder()
    listener = StreamListener(rest, [], rec.on_event, backoff=Backoff(5.0, 5.0))
    httpd: ThreadingHTTPServer | None = None
    try:
        wait_until(lambda: listener.last_error, 10, what="the first refusal")
        assert "ConnectionRefusedError" in str(listener.last_error)
        threading.Event().wait(0.6)  # several refused tries: the backoff's second would be 5 s

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                stream(put("/", "7"))(self, threading.Event())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
        listening = time.monotonic()
        assert listener.wait_connected(5)
        assert time.monotonic() - listening < 1.0
        wait_until(lambda: rec.events, 5, what="the snapshot")
        assert rec.events[0] == ("put", "/", 7)
    finally:
        listener.close()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
