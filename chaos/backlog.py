"""The ``backlog`` suite: queue many jobs before any cloud runs, then drain them.

Reports memory per queued job (RSS growth of the database server and of each dispatcher over
the submission, divided by the jobs), the dispatcher's round time as the queue drains (slot
freed by a completion -> next assignment to that cloud, first 10% of jobs vs last 10%), the
drain rate per tenth, and whether the lease lapsed while retention (GC) and the server's
compaction ran. Finished jobs are kept only ``RETENTION`` seconds so GC works during the drain.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from atmosphere.db.client import FirebaseDatabase
from atmosphere.settings import Settings

from .fleet import Fleet, Timing
from .ledger import read_executions
from .procs import Child
from .report import Row, load_average, seconds
from .tasks import make_app
from .watch import InboxWatch, LeaseWatch

RETENTION = 30.0
TIMING = Timing(heartbeat=0.25, dead_after=1.5, lease=1.0, retention=RETENTION)
# The last tenth's median round may be this much slower than the first's and still be flat
# (the machine is shared and noisy; a sort of the whole queue per round would be 10x and more).
FLAT_RATIO = 2.0
_log = logging.getLogger(__name__)


def settled_rss(children: Sequence[Child], timeout: float = 120.0) -> list[int]:
    """RSS of each child once it stopped growing (two samples a second apart within 1%)."""
    deadline = time.monotonic() + timeout
    last = [c.rss() for c in children]
    while time.monotonic() < deadline:
        time.sleep(1.0)  # sampling other processes' memory: nothing to wait on but time
        now = [c.rss() for c in children]
        if all(abs(a - b) <= 0.01 * max(a, 1) for a, b in zip(now, last, strict=True)):
            return now
        last = now
    return last


def tenth(values: Sequence[float], which: str) -> list[float]:
    """The first or the last 10% of ``values`` (at least one)."""
    n = max(1, len(values) // 10)
    return list(values[:n] if which == "first" else values[-n:])


def rates_per_tenth(times: Sequence[float]) -> list[float]:
    """Jobs per second in each tenth of the completions (``times`` sorted)."""
    n = len(times) // 10
    out = []
    for k in range(10):
        part = times[k * n : (k + 1) * n] if n else []
        span = part[-1] - part[0] if len(part) > 1 else 0.0
        out.append(round(len(part) / span, 1) if span > 0 else 0.0)
    return out


def _log_seq(data_dir: Path) -> int:
    numbers = [int(p.name[4:]) for p in data_dir.glob("log.*") if p.name[4:].isdigit()]
    return max(numbers, default=0)


def run_backlog(
    jobs: int, workdir: Path, *, fsync: bool = False, drain_timeout: float = 3600.0
) -> tuple[list[Row], dict[str, Any]]:
    """Run the suite; the table's rows and the raw figures."""
    fleet = Fleet(workdir, TIMING, clouds=3, concurrency=2, fsync=fsync, db_owner="harness")
    load_before = load_average()
    watches: list[Any] = []
    try:
        fleet.start_db()
        fleet.start_dispatchers()
        fleet.supervise()
        db = FirebaseDatabase(fleet.url)
        app = make_app(Settings.from_url(fleet.url, root=fleet.paths.root), db)
        assert isinstance(fleet.db, Child)
        procs = [fleet.db, *fleet.dispatchers]
        before = settled_rss(procs, timeout=10)
        started = time.monotonic()
        app.tasks["noop"].map(range(jobs), forget=True)
        submit_seconds = time.monotonic() - started
        _log.info("%d jobs submitted in %.1f s", jobs, submit_seconds)
        after = settled_rss(procs)
        seq_before = _log_seq(workdir / "data")
        lease = LeaseWatch(db, fleet.paths.lease, TIMING.lease)
        inbox = InboxWatch(db, fleet.paths.inbox())
        watches += [lease, inbox]
        began = time.time()
        fleet.start_clouds()
        done = _wait_drained(fleet, jobs, drain_timeout)
        drained = time.time() - began
        left = db.get(fleet.paths.jobs(), shallow=True) or {}
        figures = _figures(jobs, procs, before, after, submit_seconds, drained, done)
        figures |= {
            "round_ms": _rounds(inbox.samples()),
            "lease": vars(lease.snapshot()),
            "compactions": _log_seq(workdir / "data") - seq_before,
            "records_left": len(left),
            "restarts": dict(fleet.restarts),
            "load_average": {"before": load_before, "after": load_average()},
        }
        for watch in watches:
            watch.close()
        app.close()
        db.close()
    finally:
        fleet.stop()
    return _rows(figures), figures


def _wait_drained(fleet: Fleet, jobs: int, timeout: float) -> list[float]:
    """Completion times of the queued jobs once all ran (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    next_log = time.monotonic() + 30
    while True:
        ran: dict[str, float] = {}
        for e in read_executions(fleet.exec_dir):  # sorted by time: the first run counts
            if e.type == "noop":
                ran.setdefault(e.job_id, e.at)
        if len(ran) >= jobs or time.monotonic() >= deadline:
            return sorted(ran.values())
        if time.monotonic() >= next_log:
            _log.info("%d of %d jobs ran", len(ran), jobs)
            next_log += 30
        time.sleep(2.0)  # reading other processes' exec logs, bounded by the deadline


def _figures(
    jobs: int,
    procs: Sequence[Child],
    before: list[int],
    after: list[int],
    submit_seconds: float,
    drained: float,
    done: list[float],
) -> dict[str, Any]:
    per_job = {c.name: round((a - b) / jobs) for c, b, a in zip(procs, before, after, strict=True)}
    return {
        "jobs": jobs,
        "submit_seconds": submit_seconds,
        "rss_before_mb": {c.name: b >> 20 for c, b in zip(procs, before, strict=True)},
        "rss_after_mb": {c.name: a >> 20 for c, a in zip(procs, after, strict=True)},
        "bytes_per_queued_job": per_job,
        "ran": len(done),
        "drain_seconds": drained,
        "jobs_per_second_by_tenth": rates_per_tenth(done),
    }


def _rounds(samples: list[float]) -> dict[str, float]:
    out: dict[str, float] = {"samples": len(samples)}
    for which in ("first", "last"):
        part = tenth(samples, which) if samples else [0.0]
        out[f"{which}_median"] = round(statistics.median(part) * 1000, 1)
        out[f"{which}_p99"] = round(sorted(part)[int(0.99 * (len(part) - 1))] * 1000, 1)
    return out


def _rows(f: dict[str, Any]) -> list[Row]:
    rounds, lease = f["round_ms"], f["lease"]
    flat = rounds["last_median"] <= FLAT_RATIO * max(rounds["first_median"], 1.0)
    return [
        Row("jobs queued / submit time", f"{f['jobs']} in {seconds(f['submit_seconds'])}"),
        Row("memory per queued job (bytes of RSS)", str(f["bytes_per_queued_job"])),
        Row("RSS before / after queueing (MB)", f"{f['rss_before_mb']} / {f['rss_after_mb']}"),
        Row("jobs run", f"{f['ran']} of {f['jobs']}", f["ran"] >= f["jobs"]),
        Row("drain time", seconds(f["drain_seconds"])),
        Row("jobs/s per tenth of the drain", str(f["jobs_per_second_by_tenth"])),
        Row(
            "round (slot freed -> next assignment), ms",
            f"first 10%: median {rounds['first_median']}, p99 {rounds['first_p99']}; "
            f"last 10%: median {rounds['last_median']}, p99 {rounds['last_p99']} "
            f"(n={rounds['samples']})",
            flat,
        ),
        Row(
            "lease lapses / elections / longest gap",
            f"{len(lease['lapses'])} / {lease['elections']} / {seconds(lease['max_gap'])}",
            not lease["lapses"] and not lease["elections"],
        ),
        Row("server compactions during the drain", str(f["compactions"])),
        Row("job records left (GC keeps 30 s)", str(f["records_left"])),
        Row("process restarts", str(f["restarts"]), not f["restarts"]),
        Row(
            "load average before / after",
            f"{f['load_average']['before']} | {f['load_average']['after']}",
        ),
    ]
