"""Which HTTP stack the database client should send with: client CPU and latency per request.

Small PATCH writes and small GET reads against the embedded server (a real ``atmosphere db``
process), one request at a time on one kept-alive connection, through each candidate:

- ``http.client``: the client's transport (``atmosphere.db._http.RestTransport``: a pool of
  keep-alive ``http.client`` connections, headers and error checks included);
- ``urllib3 pool``: ``urllib3.HTTPConnectionPool.urlopen`` (no retries, body preloaded);
- ``urllib3 manager``: ``urllib3.PoolManager.request`` (what a client reaching several hosts,
  as a redirected stream does, would use);
- ``requests``: a ``requests.Session`` (the stack firebase-admin sends with), for reference.

Each round runs every candidate in a rotated order (so none always runs first, on a cooler
machine); the figures are medians over the rounds. CPU is this process's CPU time per request
(the server is another process); latency is the p50 of each request's wall time.
Run: ``python -m bench transport`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from bench.common import Row, percentile, print_table
from bench.db import NS, Server

BODY = b'{"n":1,"who":"bench"}'
HEADERS = {"Authorization": "Bearer owner", "Content-Type": "application/json"}
Send = Callable[[str, str, bytes | None], int]


def _rest(url: str) -> tuple[Send, Callable[[], None]]:
    from atmosphere.db._http import RestTransport
    from atmosphere.db.client import TokenCredentials

    rest = RestTransport(url, {"ns": NS}, TokenCredentials("owner"), 30.0)

    def send(method: str, path: str, body: bytes | None) -> int:
        query = "print=silent" if method == "PATCH" else ""
        return rest.request(method, path.split("/"), body, query)[0]

    return send, rest.close


def _urllib3_pool(url: str) -> tuple[Send, Callable[[], None]]:
    import urllib3

    pool = urllib3.connection_from_url(url, maxsize=1, retries=False, timeout=30.0)

    def send(method: str, path: str, body: bytes | None) -> int:
        query = "print=silent&" if method == "PATCH" else ""
        target = f"/{path}.json?{query}ns={NS}"
        return pool.urlopen(method, target, body=body, headers=HEADERS, retries=False).status

    return send, pool.close


def _urllib3_manager(url: str) -> tuple[Send, Callable[[], None]]:
    import urllib3

    manager = urllib3.PoolManager(maxsize=1, retries=False, timeout=30.0)

    def send(method: str, path: str, body: bytes | None) -> int:
        query = "print=silent&" if method == "PATCH" else ""
        target = f"{url}/{path}.json?{query}ns={NS}"
        return manager.request(method, target, body=body, headers=HEADERS).status

    return send, manager.clear


def _requests(url: str) -> tuple[Send, Callable[[], None]]:
    import requests

    session = requests.Session()

    def send(method: str, path: str, body: bytes | None) -> int:
        query = "print=silent&" if method == "PATCH" else ""
        target = f"{url}/{path}.json?{query}ns={NS}"
        return session.request(method, target, data=body, headers=HEADERS, timeout=30.0).status_code

    return send, session.close


CANDIDATES: dict[str, Callable[[str], tuple[Send, Callable[[], None]]]] = {
    "http.client": _rest,
    "urllib3 pool": _urllib3_pool,
    "urllib3 manager": _urllib3_manager,
    "requests": _requests,
}


def measure(send: Send, method: str, count: int) -> tuple[float, float]:
    """(client CPU us per request, p50 latency us) over ``count`` requests after a warm-up."""
    body = BODY if method == "PATCH" else None
    for k in range(50):
        assert send(method, f"transport/k{k % 10}", body) < 300
    walls: list[float] = []
    cpu0 = time.process_time()
    for k in range(count):
        t0 = time.perf_counter()
        status = send(method, f"transport/k{k % 10}", body)
        walls.append(time.perf_counter() - t0)
        if status >= 300:
            raise RuntimeError(f"{method} answered {status}")
    cpu = (time.process_time() - cpu0) / count
    return cpu * 1e6, percentile(walls, 0.5) * 1e6


def run(runs: int = 5, count: int = 2000) -> list[Row]:
    """Every candidate, ``runs`` rounds of ``count`` PATCHes and ``count`` GETs each."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    names = list(CANDIDATES)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="atmosphere-bench-transport-") as data_dir:
        server = Server(data_dir)
        try:
            for round_ in range(runs):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    send, close = CANDIDATES[name](server.url)
                    try:
                        for method in ("PATCH", "GET"):
                            samples.setdefault((name, method), []).append(
                                measure(send, method, count)
                            )
                    finally:
                        close()
        finally:
            server.stop()
    print(
        f"transport: {runs} rounds of {count} requests; load average {load:.1f} -> "
        f"{os.getloadavg()[0]:.1f} (2 cores, shared)",
        file=sys.stderr,
    )
    return _rows(samples)


def _rows(samples: dict[tuple[str, str], list[tuple[float, float]]]) -> list[Row]:
    rows: list[Row] = []
    for method in ("PATCH", "GET"):
        base = samples[("http.client", method)]
        base_cpu = statistics.median(s[0] for s in base)
        base_lat = statistics.median(s[1] for s in base)
        for (name, m), values in samples.items():
            if m != method:
                continue
            cpu = statistics.median(s[0] for s in values)
            lat = statistics.median(s[1] for s in values)
            rows.append(
                Row("transport", f"{method} client CPU, {name}", cpu, "us", base_cpu, "http.client")
            )
            rows.append(
                Row(
                    "transport", f"{method} latency p50, {name}", lat, "us", base_lat, "http.client"
                )
            )
    return rows


if __name__ == "__main__":
    print_table(run(runs=2, count=300) if "--quick" in sys.argv else run())
