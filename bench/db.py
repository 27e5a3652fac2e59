"""Benchmark of the embedded database: PATCH writes/s (1 and 4 client processes) and delivery latency.

The server runs as a real process with persistence on and the shipped rules file loaded.
Writers use the real firebase-admin SDK (``db.reference(p).update({...})``) and, for
comparison, the Atmosphere client every Atmosphere process uses; the latency
listener is a minimal chunked SSE reader (requests ``stream=True``, ``iter_content(None)``).
Run: ``python -m bench.db``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Row, median_of, percentile, print_table

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "atmosphere" / "rules" / "database.rules.json"
LISTENING = "atmosphere db listening on "
NS = "bench"
RUNS = 3
WRITE_SECONDS = 2.0
LATENCY_WRITES = 300
LATENCY_GAP = 0.003

Report = Callable[[str, float, str, "float | None"], None]


class Server:
    """``atmosphere db`` as a child process."""

    def __init__(self, data_dir: str, extra: list[str] | None = None) -> None:
        cmd = [sys.executable, "-m", "atmosphere", "db", "--port", "0", "--data-dir", data_dir]
        cmd += ["--rules", str(RULES), *(extra or [])]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ATMOSPHERE_DB_TOKEN", None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(LISTENING):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = line[len(LISTENING) :].strip()

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(30)


def _writer(url: str, index: int, ready: Any, start: Any, results: Any, client: str) -> None:
    """One writer process: small PATCHes for WRITE_SECONDS through ``client``.

    ``sdk`` is firebase-admin's ``Reference.update``; ``atmosphere`` is the client every
    Atmosphere process uses (``FirebaseDatabase.update``: its one transport, pooled keep-alive
    http.client connections).
    """
    if client == "atmosphere":
        from atmosphere.db.client import FirebaseDatabase

        database = FirebaseDatabase(f"{url}?ns={NS}")

        def write(k: int) -> None:
            database.update(f"writes/p{index}/k{k % 100}", {"n": k, "who": "bench"})

        close = database.close
    else:
        import firebase_admin
        from firebase_admin import db

        app = firebase_admin.initialize_app(
            options={"databaseURL": f"{url}?ns={NS}"}, name=f"w{index}"
        )
        ref = db.reference(f"writes/p{index}", app=app)

        def write(k: int) -> None:
            ref.child(f"k{k % 100}").update({"n": k, "who": "bench"})

        def close() -> None:
            firebase_admin.delete_app(app)

    for k in range(50):  # warm up the connection and the code paths
        write(k)
    ready.put(index)
    start.wait()
    deadline = time.perf_counter() + WRITE_SECONDS
    count = 0
    begin = time.perf_counter()
    cpu_begin = time.process_time()
    while time.perf_counter() < deadline:
        write(count)
        count += 1
    results.put((count, time.perf_counter() - begin, time.process_time() - cpu_begin))
    close()


def writes_per_second(
    server: Server,
    processes: int,
    cpu_per_write: list[float],
    client_cpu: list[float],
    client: str = "sdk",
) -> float:
    """Total small PATCH writes/s from ``processes`` client processes (see ``_writer``).

    Appends the server's and the clients' CPU microseconds per write to the two lists.
    """
    url = server.url
    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(url, i, ready, start, results, client))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    cpu_before = server.cpu_seconds()
    start.set()
    total = 0.0
    writes = 0
    clients = 0.0
    for _ in procs:
        count, elapsed, cpu = results.get(timeout=60)
        total += count / elapsed
        writes += count
        clients += cpu
    cpu_per_write.append((server.cpu_seconds() - cpu_before) / max(writes, 1) * 1e6)
    client_cpu.append(clients / max(writes, 1) * 1e6)
    for p in procs:
        p.join(30)
    return total


def _listen(url: str, path: str, got: queue.Queue[tuple[int, int]], opened: threading.Event) -> Any:
    """A minimal chunked SSE reader: puts (seq, perf_counter_ns) for each ``put`` of a seq."""
    import orjson
    import requests

    session = requests.Session()
    resp = session.get(
        f"{url}/{path}.json?ns={NS}",
        headers={"Accept": "text/event-stream", "Authorization": "Bearer owner"},
        stream=True,
    )
    resp.raise_for_status()

    def pump() -> None:
        opened.set()
        try:
            read_events()
        except Exception:  # noqa: BLE001 - closing the response ends the read with an error
            pass

    def read_events() -> None:
        buffer = b""
        for chunk in resp.iter_content(chunk_size=None):
            now = time.perf_counter_ns()
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                name, _, rest = event.partition(b"\n")
                if name == b"event: put" or name == b"event: patch":
                    data = orjson.loads(rest[len(b"data: ") :])
                    value = data["data"]
                    if isinstance(value, dict) and "v" in value:
                        value = value["v"]
                    if isinstance(value, dict) and "seq" in value:
                        got.put((value["seq"], now))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return resp


def _latency_listener(url: str, path: str, ready: Any, results: Any, expected: int) -> None:
    got: queue.Queue[tuple[int, int]] = queue.Queue()
    opened = threading.Event()
    stream = _listen(url, path, got, opened)
    opened.wait(10)
    ready.put(True)
    times: dict[int, int] = {}
    while len(times) < expected:
        try:
            seq, t = got.get(timeout=20)
        except queue.Empty:
            break
        if seq >= 0:
            times[seq] = t
    results.put(times)
    # No stream.close(): it would wait for the reader thread's blocked read (up to a
    # keep-alive); the process exit closes the socket.
    del stream


def delivery_latency(url: str) -> tuple[float, float]:
    """p50 and p99 (ms) from the start of an SDK update() to the listener receiving it."""
    import firebase_admin
    from firebase_admin import db

    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    path = f"latency/{time.perf_counter_ns()}"
    listener = ctx.Process(
        target=_latency_listener, args=(url, path, ready, results, LATENCY_WRITES)
    )
    listener.start()
    ready.get(timeout=60)
    app = firebase_admin.initialize_app(
        options={"databaseURL": f"{url}?ns={NS}"}, name=f"lat{time.perf_counter_ns()}"
    )
    ref = db.reference(path, app=app)
    sent: dict[int, int] = {}
    for seq in range(-20, LATENCY_WRITES):  # negative seqs warm up
        t0 = time.perf_counter_ns()
        ref.update({"v": {"seq": seq, "pad": "x" * 20}})
        if seq >= 0:
            sent[seq] = t0
        time.sleep(LATENCY_GAP)
    received = results.get(timeout=60)
    listener.join(30)
    firebase_admin.delete_app(app)
    samples = [(received[s] - t0) / 1e6 for s, t0 in sent.items() if s in received]
    if len(samples) < LATENCY_WRITES:
        raise RuntimeError(f"lost events: {LATENCY_WRITES - len(samples)}")
    return percentile(samples, 0.5), percentile(samples, 0.99)


def run(report: Report | None = None, runs: int = RUNS) -> list[Row]:
    """Measure; return the rows (and call ``report(name, value, unit, baseline)`` for each)."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="atmosphere-bench-db-") as data_dir:
        server = Server(data_dir)
        try:
            cpu: list[float] = []
            client_cpu: list[float] = []
            load_before = os.getloadavg()[0]
            w1, s1 = median_of(runs, lambda: writes_per_second(server, 1, cpu, client_cpu))
            w4, s4 = median_of(runs, lambda: writes_per_second(server, 4, cpu, client_cpu))
            np_cpu: list[float] = []
            np_client: list[float] = []
            w4at, _ = median_of(
                runs, lambda: writes_per_second(server, 4, np_cpu, np_client, "atmosphere")
            )
            print(
                f"writes/s samples: 1 process {[round(x) for x in s1]}, "
                f"4 processes {[round(x) for x in s4]}; load average {load_before:.1f} "
                f"-> {os.getloadavg()[0]:.1f} (2 cores; other work on the machine lowers these)",
                file=sys.stderr,
            )
            lat = [delivery_latency(server.url) for _ in range(runs)]
        finally:
            server.stop()
    p50 = sorted(x[0] for x in lat)[len(lat) // 2]
    p99 = sorted(x[1] for x in lat)[len(lat) // 2]
    rows.append(Row("db", "PATCH writes/s, 1 firebase-admin process", w1, "writes/s"))
    rows.append(
        Row("db", "PATCH writes/s, 4 firebase-admin processes", w4, "writes/s", target=">= 3,000")
    )
    rows.append(
        Row(
            "db",
            "PATCH writes/s, 4 Atmosphere-client processes",
            w4at,
            "writes/s",
            baseline=w4,
            baseline_label="firebase-admin",
            target=">= 3,000",
        )
    )
    rows.append(Row("db", "delivery latency p50", p50, "ms", target="<= 1 ms"))
    rows.append(Row("db", "delivery latency p99", p99, "ms"))
    server_us = sorted(cpu)[len(cpu) // 2]
    client_us = sorted(client_cpu)[len(client_cpu) // 2]
    rows.append(Row("db", "server CPU per write", server_us, "us"))
    rows.append(Row("db", "client CPU per write (firebase-admin)", client_us, "us"))
    np_client_us = sorted(np_client)[len(np_client) // 2]
    rows.append(Row("db", "client CPU per write (Atmosphere client)", np_client_us, "us"))
    # What 2 otherwise idle cores could sustain, from the CPU each write costs both sides.
    rows.append(
        Row("db", "CPU-bound capacity on 2 free cores", 2e6 / (server_us + client_us), "writes/s")
    )
    rows.append(
        Row(
            "db",
            "CPU-bound capacity on 2 free cores, Atmosphere client",
            2e6 / (server_us + np_client_us),
            "writes/s",
        )
    )
    if report is not None:
        for r in rows:
            assert r.value is not None
            report(r.figure, r.value, r.unit, r.baseline)
    return rows


if __name__ == "__main__":
    print_table(run())
