"""``serve()``: a real socket on a background thread; stops promptly even with pages streaming."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest

from atmosphere.errors import ConfigError
from atmosphere.settings import Settings
from atmosphere.station import serve
from atmosphere.testing import MemoryDatabase
from tests.unit.station_helpers import PATHS


def test_serve_streams_changes_and_stops_with_a_stream_open() -> None:
    db = MemoryDatabase()
    handle = serve(Settings(), db, port=0)
    try:
        assert handle.url.startswith("http://127.0.0.1:") and handle.port > 0
        conn = http.client.HTTPConnection(handle.host, handle.port, timeout=10)
        conn.request("GET", "/api/events")
        stream = conn.getresponse()
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = _next_live(stream)
        assert first["queued"] == 0
        db.set(PATHS.queue("a", "j1"), {"type": "a", "name": "n"})
        while (frame := _next_live(stream))["queued"] == 0:
            pass
        assert frame["in_flight"][0]["id"] == "j1"
    finally:
        started = time.monotonic()
        handle.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 5.0


def _next_live(stream: http.client.HTTPResponse) -> dict[str, Any]:
    event = ""
    while True:
        line = stream.readline().decode()
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event == "live":
            data: dict[str, Any] = json.loads(line[6:])
            return data


def test_serve_refuses_a_public_address_without_a_token() -> None:
    with pytest.raises(ConfigError):
        serve(Settings(), MemoryDatabase(), host="0.0.0.0", port=0)
