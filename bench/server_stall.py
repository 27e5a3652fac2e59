"""``python -m bench.server_stall [gc|compaction] [JOBS]``: the embedded server's worst stall.

Loads JOBS finished job records (100,000 by default, about 45 MB) into a real ``atmosphere db``
process, then measures a prober's small writes, one after another, while the server does the
heavy thing:

- ``gc``: the dispatcher's retention query (``orderBy finished``, a page of 500) and the Weather
  Station's job-detail queries (``orderBy parent``, ``$key`` range), back to back;
- ``compaction``: 64 KB writes push the log over ``--compact-after`` (4 MB), so the server
  snapshots the whole database.

Prints the prober's write count, median, p99 and worst latency in ms.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from atmosphere.rtdb.pushid import PushIdGenerator
from bench.common import percentile
from bench.db import Server

NS = "stall"
BATCH = 2_000


class Conn:
    """One keep-alive HTTP connection to the server, as owner."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.http = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None, query: str = "") -> bytes:
        sep = "&" if query else ""
        self.http.request(
            method,
            f"{path}?ns={NS}&print=silent{sep}{query}"
            if method != "GET"
            else f"{path}?ns={NS}{sep}{query}",
            body=body,
            headers={"Authorization": "Bearer owner"},
        )
        response = self.http.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data


def load(url: str, jobs: int) -> None:
    """Write ``jobs`` finished job records, BATCH per PATCH."""
    conn, ids = Conn(url), PushIdGenerator()
    for start in range(0, jobs, BATCH):
        batch = {}
        for n in range(start, min(jobs, start + BATCH)):
            job_id = ids.next()
            batch[f"atmosphere/jobs/{job_id}"] = {
                "type": "work",
                "name": job_id,
                "data": {"n": n, "user": "ada lovelace", "items": [1, 2, 3]},
                "timeout": 60,
                "submitted": 1_700_000_000_000 + n,
                "reply_to": "-Mk3abcdefghijklmnop",
                "state": "succeeded",
                "cloud": "host-1234",
                "attempts": 1,
                "finished": 1_700_000_000_300 + n,
                "result": {"ok": True, "user": "ada"},
            }
        conn.call("PATCH", "/.json", orjson.dumps(batch))


def probe(url: str, stop: threading.Event, latencies: list[float]) -> None:
    conn, n = Conn(url), 0
    while not stop.is_set():
        start = time.perf_counter()
        conn.call("PUT", "/probe.json", str(n).encode())
        latencies.append(time.perf_counter() - start)
        n += 1


def gc_load(url: str, seconds: float) -> int:
    conn, queries, deadline = Conn(url), 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.call(
            "GET",
            "/atmosphere/jobs.json",
            query='orderBy="finished"&startAt=0&endAt=1800000000000&limitToFirst=500',
        )
        conn.call(
            "GET", "/atmosphere/jobs.json", query='orderBy="parent"&equalTo="x"&limitToFirst=200'
        )
        conn.call(
            "GET",
            "/atmosphere/jobs.json",
            query='orderBy="$key"&startAt="-Z"&endAt="-Z\uf8ff"&limitToFirst=200'.replace(
                "\uf8ff", "%EF%A3%BF"
            ),
        )
        queries += 3
    return queries


def compaction_load(url: str, data_dir: str) -> int:
    conn, blob, writes = Conn(url), orjson.dumps("x" * 65_536), 0
    while writes < 200:
        conn.call("PUT", f"/blob/{writes % 4}.json", blob)
        writes += 1
    return writes


def main(scenario: str, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        extra = ["--compact-after", str(4 * 1024 * 1024)] if scenario == "compaction" else []
        server = Server(data_dir, extra=["--max-body", str(64 * 1024 * 1024)])
        load(server.url, jobs)
        server.stop()  # a clean stop snapshots it all; the measured server starts from there
        server = Server(data_dir, extra=extra)
        try:
            stop, latencies = threading.Event(), list[float]()
            prober = threading.Thread(target=probe, args=(server.url, stop, latencies))
            prober.start()
            time.sleep(1.0)  # a baseline before the load starts
            started = time.perf_counter()
            if scenario == "gc":
                done = gc_load(server.url, 10.0)
            else:
                done = compaction_load(server.url, data_dir)
                # Measure until the last background snapshot is written, too.
                deadline = time.monotonic() + 60
                while Path(data_dir, "snapshot.json.tmp").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            took = time.perf_counter() - started
            time.sleep(1.0)
            stop.set()
            prober.join()
        finally:
            server.stop()
    ms = [x * 1000 for x in latencies]
    print(
        f"{scenario} on {jobs:,} jobs: {done} heavy requests in {took:.1f} s; prober "
        f"{len(ms)} writes, median {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"worst {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "gc",
        int(sys.argv[2]) if len(sys.argv) > 2 else 100_000,
    )
