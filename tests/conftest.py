"""Shared fixtures: one embedded server per session, a fresh namespace per test, SDK refs.

- ``db_server``: a session-wide ``atmosphere db`` process (tests/support.ServerProcess), with
  a 1 s SSE keep-alive so firebase-admin's ``ListenerRegistration.close()`` returns quickly.
- ``ns``: a fresh namespace name per test (isolation without flushing).
- ``sdk_db``: ``ref(path)`` -> a firebase_admin ``db.Reference`` on ``ns``, through a fresh
  firebase-admin app that is deleted at teardown.
- ``raw``: a tests/support.RawClient (plain HTTP as ``owner``) on ``ns``.
- ``sse``: ``sse(path, **kw)`` opens a tests/support.SseStream on ``ns`` (closed at teardown).

Tests that use firebase-admin's ``listen()`` should ignore
``pytest.PytestUnhandledThreadExceptionWarning``: its reader thread raises when ``close()``
pulls the response from under it (an SDK trait, not a server fault).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    RawClient,
    ServerProcess,
    SseStream,
    sdk_app,
    start_db_server,
    unique_ns,
)

# firebase-admin must never look for Google credentials or a real emulator in tests.
os.environ.pop("FIREBASE_DATABASE_EMULATOR_HOST", None)


@pytest.fixture(scope="session")
def db_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One embedded database server process for the whole session."""
    data_dir: Path = tmp_path_factory.mktemp("db-session")
    # A short keep-alive makes the SDK's ListenerRegistration.close() (which only returns once
    # its blocked read gets a byte) quick.
    server = start_db_server(data_dir, extra_args=["--keep-alive", "1"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ns() -> str:
    """A fresh namespace name for this test."""
    return unique_ns()


@pytest.fixture
def sdk_db(db_server: ServerProcess, ns: str) -> Iterator[Callable[[str], Any]]:
    """``ref(path)``: a firebase-admin Reference on this test's namespace."""
    import firebase_admin
    from firebase_admin import db

    app = sdk_app(db_server.url, ns)

    def ref(path: str = "/") -> Any:
        return db.reference(path, app=app)

    try:
        yield ref
    finally:
        firebase_admin.delete_app(app)


@pytest.fixture
def raw(db_server: ServerProcess, ns: str) -> Iterator[RawClient]:
    """Plain HTTP on this test's namespace, authorised as ``owner``."""
    client = RawClient(db_server.url, ns)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def sse(db_server: ServerProcess, ns: str) -> Iterator[Callable[..., SseStream]]:
    """``sse(path, **kw)`` opens a raw SSE stream on this test's namespace; closed at teardown."""
    opened: list[SseStream] = []

    def open_stream(path: str, **kw: Any) -> SseStream:
        stream = SseStream(db_server.url, path, kw.pop("ns", ns), **kw)
        opened.append(stream)
        return stream

    try:
        yield open_stream
    finally:
        for s in opened:
            s.close()
