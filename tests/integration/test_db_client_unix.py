"""Our client and an embedded server on the same machine talk through the server's Unix socket.

The server listens on ``<data dir>/server.sock`` besides its TCP port and names it to a client
that asks (``X-Atmosphere-Socket``); our client asks on its first request to a loopback URL and
then opens its connections and streams there. Anyone else (firebase-admin) sees plain TCP.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atmosphere.db import _http
from atmosphere.db.client import FirebaseDatabase
from devkit.procs import ServerProcess, start_db_server
from tests.support import unique_ns


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_db_server(tmp_path / "data")
    try:
        yield server
    finally:
        server.stop()


def _ask(server: ServerProcess, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/.json?ns=x", headers={"Authorization": "Bearer owner", **headers})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer


def test_the_server_listens_on_an_owner_only_socket_and_names_it_only_when_asked(
    server: ServerProcess,
) -> None:
    path = server.data_dir / "server.sock"
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    info = json.loads((server.data_dir / "server.json").read_text())
    assert info["socket"] == str(path)
    assert _ask(server, {}).getheader("x-atmosphere-socket") is None  # firebase-admin's view
    assert _ask(server, {"X-Atmosphere-Socket": "?"}).getheader("x-atmosphere-socket") == str(path)


def test_the_socket_goes_with_the_server(tmp_path: Path) -> None:
    server = start_db_server(tmp_path / "data")
    assert (server.data_dir / "server.sock").exists()
    server.stop()
    assert not (server.data_dir / "server.sock").exists()


def test_requests_and_streams_go_through_the_socket(server: ServerProcess) -> None:
    # Given our client on the server's loopback URL
    db = FirebaseDatabase(server.db_url(unique_ns()))
    rest = db._rest
    try:
        # When it writes, reads and listens
        db.set("a", {"b": 1})
        assert rest._unix == str(server.data_dir / "server.sock")
        assert db.get("a") == {"b": 1}
        events: list[tuple[Any, ...]] = []
        arrived = [threading.Event(), threading.Event()]

        def on_event(*event: Any) -> None:
            events.append(event)
            arrived[len(events) - 1].set()

        listener = db.listen("a", on_event)
        assert arrived[0].wait(10)
        db.update("a", {"c": 2})
        assert arrived[1].wait(10)
        # I expect every connection it holds to be on the socket, the stream's too
        assert events == [("put", "/", {"b": 1}), ("patch", "/", {"c": 2})]
        assert rest._connections
        assert all(isinstance(c, _http._UnixConnection) for c in rest._connections)
        stream = listener._response
        assert stream is not None and stream._sock.family == socket.AF_UNIX
    finally:
        db.close()


def test_a_socket_that_does_not_connect_sends_the_client_back_to_tcp(
    server: ServerProcess,
) -> None:
    db = FirebaseDatabase(server.db_url(unique_ns()))
    rest = db._rest
    try:
        db.set("a", 1)
        assert rest._unix is not None
        # Given the socket gone (a server that stopped; here only its file)
        os.unlink(rest._unix)
        for conn in rest._idle:
            conn.close()
        # When the client opens a stream, and needs a new connection for a request
        first = threading.Event()
        events: list[tuple[Any, ...]] = []

        def on_event(*event: Any) -> None:
            events.append(event)
            first.set()

        listener = db.listen("a", on_event)
        assert first.wait(10)
        db.set("a", 2)
        # I expect both to go through over TCP, and the server's answer to the new question
        # (a path that is no socket now) not to be taken
        assert events[0] == ("put", "/", 1)
        assert db.get("a") == 2
        assert rest._unix is None and not rest._ask_socket
        assert not any(isinstance(c, _http._UnixConnection) for c in rest._connections)
        stream = listener._response
        assert stream is not None and stream._sock.family != socket.AF_UNIX
    finally:
        db.close()


def test_only_an_absolute_path_to_a_socket_of_this_user_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(1)
    (tmp_path / "link.sock").symlink_to(path)
    client = socket.socket(socket.AF_UNIX)
    try:
        assert _http._own_socket(str(path))
        assert not _http._own_socket("s.sock")  # relative: depends on the working directory
        (tmp_path / "file").write_text("")
        assert not _http._own_socket(str(tmp_path / "file"))  # not a socket
        assert not _http._own_socket(str(tmp_path / "missing"))
        assert not _http._own_socket(str(tmp_path / "link.sock"))  # whatever it points to
        client.connect(str(path))
        _http._check_peer(client, str(path))  # served by this user's process: no error
    finally:
        client.close()
        sock.close()


def test_a_refused_request_is_not_told_where_the_socket_is(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/.json?ns=x&print=nonsense", headers={"X-Atmosphere-Socket": "?"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    assert answer.status >= 400 and answer.getheader("x-atmosphere-socket") is None
