"""The hot-path REST transport (atmosphere/db/_http.py) against a scripted HTTP peer.

A real socket server on 127.0.0.1 that records every request it reads and then answers, hangs
up without answering (as a server that executed the request and died would), or answers and
closes the idle connection (as servers do with keep-alive connections they no longer want).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atmosphere.db._http import RestTransport
from atmosphere.db.client import FirebaseDatabase, TokenCredentials
from atmosphere.errors import DatabaseError
from tests.credentials import CountingCredential

ANSWER = "answer"
HANG_UP = "hang up"  # read the whole request, then close without a word
ANSWER_THEN_CLOSE = "answer then close"
DENY = "deny"  # 401 from the security rules
EXPIRED = "expired"  # 401 for the credential


def _answer(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body)


_DENIED = _answer(b"401 Unauthorized", b'{"error": "Permission denied"}')
_EXPIRED = _answer(b"401 Unauthorized", b'{"error": "Auth token is expired"}')

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\nnull"


class Peer:
    """Accepts connections; ``script(n)`` decides what to do with the n-th request (from 0)."""

    def __init__(self, script: Callable[[int], str]) -> None:
        self.script = script
        self.requests: list[tuple[str, str, bytes]] = []
        self.headers: list[dict[str, str]] = []  # of each request, names in lower case
        self.connections = 0
        self.closed_idle = threading.Event()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stopping = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if self._stopping:
                conn.close()
                return
            with self._lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", 0))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    index = len(self.requests)
                    self.requests.append((method, target, body))
                    self.headers.append(headers)
                action = self.script(index)
                if action == HANG_UP:
                    return
                if action.startswith("HTTP/"):
                    conn.sendall(action.encode())  # a scripted answer, verbatim
                    continue
                conn.sendall(_DENIED if action == DENY else _EXPIRED if action == EXPIRED else _OK)
                if action == ANSWER_THEN_CLOSE:
                    conn.shutdown(socket.SHUT_RDWR)
                    self.closed_idle.set()
                    return

    def stop(self) -> None:
        self._stopping = True
        self._server.close()


MakePeer = Callable[[Callable[[int], str]], Peer]


@pytest.fixture
def make_peer() -> Iterator[MakePeer]:
    peers: list[Peer] = []

    def make(script: Callable[[int], str]) -> Peer:
        peers.append(Peer(script))
        return peers[-1]

    yield make
    for peer in peers:
        peer.stop()


def _transport(peer: Peer) -> RestTransport:
    return RestTransport(peer.url, {}, TokenCredentials("owner"), timeout=5.0)


INCREMENT = b'{"count": {".sv": {"increment": 1}}}'


def test_a_patch_the_server_may_have_executed_is_never_sent_again(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: HANG_UP)
    rest = _transport(peer)
    with pytest.raises(DatabaseError):
        rest.request("PATCH", ["stats"], INCREMENT)
    rest.close()
    assert [m for m, _, _ in peer.requests] == ["PATCH"]


@pytest.mark.parametrize(
    ("method", "body", "headers"),
    [
        ("POST", b'{"a": 1}', None),
        ("PUT", b'{".sv": {"increment": 1}}', None),
        ("PUT", b"1", {"if-match": "abc"}),
        ("DELETE", None, {"if-match": "abc"}),
    ],
)
def test_no_other_unrepeatable_request_is_sent_again(
    make_peer: MakePeer, method: str, body: bytes | None, headers: dict[str, str] | None
) -> None:
    peer = make_peer(lambda n: HANG_UP)
    rest = _transport(peer)
    with pytest.raises(DatabaseError):
        rest.request(method, ["x"], body, headers=headers)
    rest.close()
    assert len(peer.requests) == 1


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", b"1"), ("DELETE", None)])
def test_an_idempotent_request_is_sent_again_after_a_hang_up(
    make_peer: MakePeer, method: str, body: bytes | None
) -> None:
    peer = make_peer(lambda n: HANG_UP if n == 0 else ANSWER)
    rest = _transport(peer)
    status, _, data = rest.request(method, ["x"], body)
    rest.close()
    assert (status, data) == (200, b"null")
    assert [m for m, _, _ in peer.requests] == [method, method]


def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(
    make_peer: MakePeer,
) -> None:
    peer = make_peer(lambda n: ANSWER_THEN_CLOSE if n == 0 else ANSWER)
    rest = _transport(peer)
    assert rest.request("GET", ["x"])[0] == 200
    assert peer.closed_idle.wait(5.0)
    status, _, _ = rest.request("PATCH", ["stats"], INCREMENT)
    rest.close()
    assert status == 200
    assert [m for m, _, _ in peer.requests] == ["GET", "PATCH"]
    assert peer.connections == 2


def test_connections_are_kept_alive_and_outlive_no_thread(make_peer: MakePeer) -> None:
    # A cloud runs each job on a new thread: a connection per thread, kept open after the
    # thread ended, was one leaked socket per job (on both sides).
    peer = make_peer(lambda n: ANSWER)
    rest = _transport(peer)
    for _ in range(3):
        assert rest.request("GET", ["x"])[0] == 200
    for _ in range(20):
        job = threading.Thread(target=lambda: rest.request("PATCH", ["y"], b"{}"))
        job.start()
        job.join(5.0)
    assert len(peer.requests) == 23
    assert peer.connections == 1
    rest.close()


def test_concurrent_requests_use_at_most_one_connection_each(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: ANSWER)
    rest = _transport(peer)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert rest.request("GET", ["x"])[0] == 200
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10.0)
    rest.close()
    assert not failures
    assert len(peer.requests) == 100
    assert 1 <= peer.connections <= 4


def test_a_closed_transport_sends_nothing_more(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: ANSWER)
    rest = _transport(peer)
    assert rest.request("GET", ["x"])[0] == 200  # this thread now has a connection
    rest.close()
    with pytest.raises(DatabaseError, match="closed"):
        rest.request("GET", ["x"])
    assert len(peer.requests) == 1
    assert peer.connections == 1


def test_a_rules_denial_is_not_a_reason_to_refresh_the_credential(make_peer: MakePeer) -> None:
    # Refreshing a service account's token is a round trip to Google's OAuth server; a
    # denied write retried in a loop must not make one each time.
    peer = make_peer(lambda n: DENY)
    credential = CountingCredential()
    rest = RestTransport(peer.url, {}, credential, timeout=5.0)
    status, _, _ = rest.request("PUT", ["x"], b"1")
    rest.close()
    assert status == 401
    assert credential.refreshes == 0
    assert len(peer.requests) == 1


def test_an_expired_token_is_refreshed_and_the_request_sent_again(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: EXPIRED if n == 0 else ANSWER)
    credential = CountingCredential()
    rest = RestTransport(peer.url, {}, credential, timeout=5.0)
    status, _, _ = rest.request("PATCH", ["x"], INCREMENT)
    rest.close()
    assert status == 200
    assert credential.refreshes == 1
    assert len(peer.requests) == 2


def test_a_transaction_write_the_server_may_have_applied_is_not_sent_again(
    make_peer: MakePeer,
) -> None:
    # Resending a conditional PUT that was applied gets a 412 carrying the new value, and
    # the transaction would then apply its function a second time (an increment twice).
    read = 'HTTP/1.1 200 OK\r\nETag: "e1"\r\ncontent-length: 1\r\n\r\n1'
    conflict = 'HTTP/1.1 412 Precondition Failed\r\nETag: "e2"\r\ncontent-length: 1\r\n\r\n2'
    peer = make_peer(lambda n: read if n == 0 else HANG_UP if n == 1 else conflict)
    database = FirebaseDatabase(f"{peer.url}?ns=peer", token="owner")
    calls: list[object] = []

    def increment(value: object) -> object:
        calls.append(value)
        return int(value or 0) + 1  # type: ignore[call-overload]

    try:
        with pytest.raises(DatabaseError):
            database.transaction("counter", increment)
    finally:
        database.close()
    assert calls == [1]
    assert [m for m, _, _ in peer.requests] == ["GET", "PUT"]


def test_connections_are_reused_in_a_process_with_many_open_files(make_peer: MakePeer) -> None:
    # select() cannot watch a descriptor numbered 1024 or more: the idle check must not
    # mistake that for a closed connection (which meant a new connection per request).
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip("needs 1200 open files")
    peer = make_peer(lambda n: ANSWER)
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        rest = _transport(peer)
        for _ in range(3):
            assert rest.request("GET", ["x"])[0] == 200
        rest.close()
    finally:
        for fd in filler:
            os.close(fd)
    assert peer.connections == 1


class ExpiredCredential(TokenCredentials):
    """Invalid until refreshed; a refresh waits for ``release``; records who looked."""

    def __init__(self) -> None:
        super().__init__("old")
        self.is_valid = False
        self.refreshes = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lookers: list[str] = []
        self.looked = threading.Condition()

    @property
    def valid(self) -> bool:
        with self.looked:
            self.lookers.append(threading.current_thread().name)
            self.looked.notify_all()
        return self.is_valid

    def refresh(self, request: object) -> None:
        self.refreshes += 1
        self.entered.set()
        self.release.wait(5.0)
        self.token, self.is_valid = "new", True


def test_threads_that_find_the_token_expired_refresh_it_once(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: ANSWER)
    credential = ExpiredCredential()
    rest = RestTransport(peer.url, {}, credential, timeout=5.0)
    first = threading.Thread(target=lambda: rest.request("GET", ["x"]), name="first")
    second = threading.Thread(target=lambda: rest.request("GET", ["x"]), name="second")
    first.start()
    assert credential.entered.wait(5.0)  # the first is refreshing
    second.start()
    with credential.looked:  # the second has seen the token expired too
        assert credential.looked.wait_for(lambda: "second" in credential.lookers, 5.0)
    credential.release.set()
    first.join(5.0)
    second.join(5.0)
    rest.close()
    assert credential.refreshes == 1
    assert len(peer.requests) == 2


def test_an_expired_token_is_refreshed_after_a_lost_connection_too(make_peer: MakePeer) -> None:
    peer = make_peer(lambda n: HANG_UP if n == 0 else EXPIRED if n == 1 else ANSWER)
    credential = CountingCredential()
    rest = RestTransport(peer.url, {}, credential, timeout=5.0)
    status, _, _ = rest.request("GET", ["x"])
    rest.close()
    assert status == 200
    assert credential.refreshes == 1
    assert len(peer.requests) == 3


class OAuthServer:
    """Google's token endpoint, played on loopback: every assertion gets a fresh token."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.grants: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                outer.grants.append(self.rfile.read(int(self.headers["Content-Length"])))
                body = b'{"access_token": "ya29.token%d", "expires_in": 3600}' % len(outer.grants)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_service_account_signs_requests_with_a_token_google_auth_fetched(
    make_peer: MakePeer, tmp_path: Path
) -> None:
    # Real Firebase: firebase-admin loads the service account, google-auth fetches and
    # refreshes its OAuth token, and our transport sends it as the Bearer token.
    import base64
    import json
    from urllib.parse import parse_qs

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from firebase_admin import credentials

    from atmosphere.db._endpoint import endpoint
    from atmosphere.db.client import _credential_for

    oauth = OAuthServer()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    account = {
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": "k1",
        "private_key": pem.decode(),
        "client_email": "bot@acme.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": oauth.url,
    }
    (tmp_path / "key.json").write_text(json.dumps(account))
    where = endpoint("https://acme.firebaseio.com")
    certificate = credentials.Certificate(str(tmp_path / "key.json"))
    google_credential = _credential_for(where, certificate, None, "https://acme.firebaseio.com")
    peer = make_peer(lambda n: EXPIRED if n == 1 else ANSWER)
    rest = RestTransport(peer.url, where.params, google_credential, timeout=5.0)
    try:
        for _ in range(3):
            assert rest.request("GET", ["x"])[0] == 200
    finally:
        rest.close()
        oauth.stop()
    assert [h["authorization"] for h in peer.headers] == [
        "Bearer ya29.token1",
        "Bearer ya29.token1",  # answered 401 "expired": refreshed and sent again
        "Bearer ya29.token2",
        "Bearer ya29.token2",
    ]
    assert len(oauth.grants) == 2
    assertion = parse_qs(oauth.grants[0].decode())["assertion"][0]
    claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    scopes = claims["scope"].split()  # firebase-admin's, which the database accepts
    assert {"firebase", "userinfo.email"} <= {s.rsplit("/", 1)[1] for s in scopes}
