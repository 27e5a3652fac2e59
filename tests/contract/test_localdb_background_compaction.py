"""A real server killed (-9) while its worker thread writes a snapshot loses no acknowledged write."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from tests.support import RawClient, start_db_server, wait_until

ROWS = 20_000  # about 5 MB of records, so each snapshot takes a while to write


def test_kill9_during_a_background_compaction(tmp_path: Path) -> None:
    server = start_db_server(tmp_path, extra_args=["--compact-after", "500000"])
    raw = RawClient(server.url, "bg")
    records = {f"r{n:05}": {"n": n, "pad": "p" * 200} for n in range(ROWS)}
    for start in range(0, ROWS, 2_000):
        chunk = {f"rows/r{n:05}": records[f"r{n:05}"] for n in range(start, start + 2_000)}
        raw.request("PATCH", "/.json", body=orjson.dumps(chunk)).raise_for_status()
    acknowledged = [-1]
    stop = threading.Event()

    def writer() -> None:
        # Each write is 1 KB: the log keeps crossing --compact-after, so snapshots keep coming.
        client = RawClient(server.url, "bg")
        i = 0
        while not stop.is_set():
            try:
                r = client.put("/counter.json", {"i": i, "pad": "c" * 1_000})
            except Exception:  # noqa: BLE001 - the server dies under us: that is the test
                return
            if r.status_code != 200:
                return
            acknowledged[0] = i
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        # The temporary snapshot exists only while a worker thread is writing it.
        wait_until(
            lambda: (tmp_path / "snapshot.json.tmp").exists() and acknowledged[0] > 0,
            timeout=60,
            interval=0.001,
            what="a background compaction in progress",
        )
        server.kill()
    finally:
        stop.set()
        t.join(10)
    server = start_db_server(tmp_path)
    raw = RawClient(server.url, "bg")
    try:
        counter: Any = raw.get("/counter.json").json()
        # A write may be committed but not yet acknowledged when the server dies.
        assert counter["i"] in (acknowledged[0], acknowledged[0] + 1)
        assert raw.get("/rows.json").json() == records
    finally:
        raw.close()
        server.stop()
