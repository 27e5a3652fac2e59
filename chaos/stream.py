"""The ``run`` and ``soak`` suites: the fleet under the mixed stream, with or without faults.

Phases: start the fleet; submit the stream while the injector works for ``minutes``; stop the
faults and the stream, let every process come back and drain (bounded); then judge the ledger
and print one table.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmosphere.db.client import FirebaseDatabase
from atmosphere.settings import Settings

from . import checks
from .faults import KINDS, Injector, plan
from .fleet import Fleet, Timing
from .ledger import Fault, Ledger, read_executions
from .report import Row, load_average, seconds
from .tasks import make_app
from .watch import HeartbeatWatch, LeaseWatch, ReplyWatch
from .workload import ORDINARY, POISONS, TIMEOUT, Workload

_log = logging.getLogger(__name__)
TICK = "chaos-tick"


@dataclass(frozen=True)
class Options:
    """What one run or soak does."""

    minutes: float
    workdir: Path
    timing: Timing = Timing()
    faults: Sequence[str] = KINDS
    fault_every: float = 10.0
    poison_every: float | None = 20.0
    threads: int = 4
    # Slots per cloud: a default cloud (one slot: it runs its job on its inbox stream's thread)
    # beside two that run theirs on job threads, so every run covers both.
    concurrency: tuple[int, ...] = (1, 2, 2)
    drain: float = TIMEOUT + 60.0
    max_stall: float = 30.0
    fsync: bool = False
    db_owner: str = "dispatcher"  # or "harness": who starts (and restarts) the database
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))


@dataclass
class _Watches:
    replies: ReplyWatch
    lease: LeaseWatch
    clouds: HeartbeatWatch
    dispatchers: HeartbeatWatch

    def at_stop(self, began: float) -> dict[str, Any]:
        """The lease and heartbeat figures so far."""
        lease = self.lease.snapshot()
        return {
            "lease": vars(lease) | {"lapses": [t - began for t in lease.lapses]},
            "heartbeats": {"clouds": self.clouds.count(), "dispatchers": self.dispatchers.count()},
        }

    def close(self) -> None:
        for watch in (self.replies, self.lease, self.clouds, self.dispatchers):
            watch.close()


def run_stream(options: Options) -> tuple[list[Row], dict[str, Any]]:
    """Run the suite; the table's rows and the raw figures."""
    rng = random.Random(options.seed)
    fleet = Fleet(
        options.workdir,
        options.timing,
        concurrency=options.concurrency,
        fsync=options.fsync,
        db_owner=options.db_owner,
    )
    load_before = load_average()
    try:
        fleet.start()
        figures = _run_started(options, fleet, rng)
    finally:
        fleet.stop()
    figures["load_average"] = {"before": load_before, "after": load_average()}
    return _rows(options, figures), figures


def _run_started(options: Options, fleet: Fleet, rng: random.Random) -> dict[str, Any]:
    ledger = Ledger()
    db = FirebaseDatabase(fleet.url)
    watch_db = FirebaseDatabase(fleet.url)
    settings = Settings.from_url(fleet.url, root=fleet.paths.root, default_timeout=TIMEOUT)
    app = make_app(settings, db)
    try:
        app.schedule(TICK, "noop", every=1)
        watches = _Watches(
            ReplyWatch(watch_db, fleet.paths.replies(app.maker.id)),
            LeaseWatch(watch_db, fleet.paths.lease, options.timing.lease),
            HeartbeatWatch(watch_db, fleet.paths.clouds()),
            HeartbeatWatch(watch_db, fleet.paths.dispatchers()),
        )
        workload = Workload(
            app, ledger, rng, threads=options.threads, poison_every=poison_interval(options)
        )
        schedule = plan(options.faults, options.minutes * 60, options.fault_every, rng)
        injector = Injector(fleet, db, ledger, schedule, rng)
        began = time.time()
        workload.start()
        injector.start()
        try:
            _progress(ledger, fleet, began, options.minutes * 60)
        finally:
            injector.stop()
        _stop_ticks(db, fleet)
        stopped = time.time()
        # The lease and heartbeats are judged over the run itself: the drain restarts
        # processes, and reading every job record afterwards is a big read of its own.
        watched = watches.at_stop(began)
        drained = _drain(fleet, ledger, workload, options.drain)
        records = _records(db, fleet)
        figures = _judge(options, fleet, ledger, watches, (began, stopped), drained, records)
        figures |= watched
        watches.close()
    finally:
        app.close()
        watch_db.close()
        db.close()
    return figures


def poison_interval(options: Options) -> float | None:
    """Seconds between poison jobs: at most ``poison_every``, and short enough that a short
    run still sends each kind twice."""
    if options.poison_every is None:
        return None
    return min(options.poison_every, options.minutes * 60 / (2 * len(POISONS) + 1))


def _progress(ledger: Ledger, fleet: Fleet, began: float, duration: float) -> None:
    while (left := began + duration - time.time()) > 0:
        time.sleep(min(30.0, left))  # the run's own clock: nothing to wait on but time
        _log.info(
            "%.0fs: %d sent, %d answered, %d waiting, %d faults, restarts %s",
            time.time() - began,
            len(ledger.sent),
            len(ledger.answers),
            ledger.outstanding(),
            len(ledger.faults),
            fleet.restarts,
        )


def _drain(fleet: Fleet, ledger: Ledger, workload: Workload, bound: float) -> float:
    """Stop the stream, bring every process back, wait for answers and proofs; seconds taken."""
    start = time.monotonic()
    workload.stop_submitting()
    fleet.wait_all_up()
    deadline = start + bound
    while True:
        executed = {e.job_id for e in read_executions(fleet.exec_dir)}
        unproven = [s for s in ledger.sent if s.proof is not None and s.proof not in executed]
        if ledger.outstanding() == 0 and not unproven:
            break
        if time.monotonic() >= deadline:
            _log.error(
                "drain: after %.0f s, %d answers and %d fire-and-forget chains still missing",
                bound, ledger.outstanding(), len(unproven),
            )  # fmt: skip
            break
        time.sleep(0.5)  # waiting on other processes' results, bounded by the deadline
    workload.stop(timeout=max(1.0, deadline - time.monotonic()))
    return time.monotonic() - start


def _stop_ticks(db: FirebaseDatabase, fleet: Fleet) -> None:
    try:
        db.delete(fleet.paths.schedules(TICK))
    except Exception as exc:  # the figures do not depend on it
        _log.warning("could not remove the tick schedule: %s", exc)


def _records(db: FirebaseDatabase, fleet: Fleet) -> dict[str, Any]:
    try:
        records = db.get(fleet.paths.jobs())
    except Exception as exc:
        _log.warning("could not read the job records: %s", exc)
        return {}
    return records if isinstance(records, dict) else {}


def _judge(
    options: Options,
    fleet: Fleet,
    ledger: Ledger,
    watches: _Watches,
    span: tuple[float, float],
    drained: float,
    records: dict[str, Any],
) -> dict[str, Any]:
    began, stopped = span
    executions = read_executions(fleet.exec_dir)
    executed = {e.job_id for e in executions}
    answers = checks.first_answers(ledger.answers)
    ordinary = [s for s in ledger.sent if s.kind in ORDINARY]
    end = time.time()
    completions = [answers[s.key].at for s in ordinary if s.key in answers and answers[s.key].ok]
    waiting = [
        (s.at, answers[s.key].at if s.key in answers else end) for s in ordinary if s.tracked
    ]
    stall, stall_at = checks.longest_stall(waiting, completions)
    # Every process that died explains a rerun, whoever killed it (a poison job kills clouds).
    crashes = [
        Fault("exit", name, at - 0.2, at + options.timing.outage) for name, at, _ in fleet.exits
    ]
    faults = [*ledger.faults, *crashes]
    # Ticks get their own rows (a tick fired twice is a scheduler bug, not a rerun), judged alike.
    jobs = [e for e in executions if not checks.is_tick(e.job_id, TICK)]
    explained, unexplained = checks.executed_twice(jobs, faults)
    ticks = checks.tick_runs(executions, faults, TICK, stopped)
    payloads = watches.replies.counts()
    contradicting = checks.contradictions(ordinary, answers, records)
    details = checks.contradiction_details(
        contradicting, ordinary, answers, records, executions, faults, began
    )
    for detail in details:
        _log.error("record contradicts the response: %s", json.dumps(detail, default=str))
    return {
        "seed": options.seed,
        "minutes": options.minutes,
        "db_owner": options.db_owner,
        "timing": vars(options.timing),
        "submitted": len(ledger.sent),
        "submitted_by_kind": _count(s.kind for s in ledger.sent),
        "refused": dict(ledger.refused),
        "refusal_examples": ledger.refusals,
        "answered": len(answers),
        "lost": checks.lost(ordinary, answers, executed),
        "record_contradicts_response": contradicting,
        "contradiction_details": details,
        "failed": dict(checks.failed(ordinary, answers)),
        "duplicate_responses": checks.answered_twice(ledger.answers),
        "replies_rewritten": checks.rewritten(payloads),
        "executed_twice_after_fault": len(explained),
        "executed_twice_unexplained": unexplained,
        "executions": len(executions),
        "poisons": {
            k: vars(v)
            for k, v in checks.poison_results(
                ledger.sent, ledger.answers, payloads, POISONS
            ).items()
        },
        "ticks": {
            "executed": ticks.executed,
            "seconds": round(stopped - began),
            "run_twice_after_fault": ticks.after_fault,
            "run_twice_unexplained": ticks.unexplained,
        },
        "longest_stall": stall,
        "longest_stall_at": stall_at - began if stall else 0.0,
        "recovery": {
            k: checks.median_max(v) + (len(v),)
            for k, v in checks.recovery(ledger.faults, completions).items()
        },
        "faults": _count(f.kind for f in ledger.faults),
        "fault_log": [
            (f.kind, f.target, round(f.at - began, 2), round(f.until - f.at, 2))
            for f in ledger.faults
        ],
        "restarts": dict(fleet.restarts),
        "drain_seconds": drained,
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _rows(options: Options, f: dict[str, Any]) -> list[Row]:
    rows = [
        Row("submitted", f"{f['submitted']} {f['submitted_by_kind']}"),
        Row("refused at submit (database down)", f"{sum(f['refused'].values())} {f['refused']}"),
        Row("answered", str(f["answered"])),
        Row("lost", str(len(f["lost"])), not f["lost"]),
        Row("ordinary jobs failed", f"{sum(f['failed'].values())} {f['failed']}", not f["failed"]),
        Row(
            "duplicate responses", str(len(f["duplicate_responses"])), not f["duplicate_responses"]
        ),
        Row(
            "reply rewritten by a late run (first one restored)",
            str(len(f["replies_rewritten"])),
        ),
        Row(
            "job record contradicts the response",
            str(len(f["record_contradicts_response"])),
            not f["record_contradicts_response"],
        ),
        Row("executed twice after a crash/freeze", str(f["executed_twice_after_fault"])),
        Row(
            "executed twice, no fault to explain it",
            str(len(f["executed_twice_unexplained"])),
            not f["executed_twice_unexplained"],
        ),
    ]
    for kind, p in f["poisons"].items():
        if options.poison_every is None:
            break
        expect = POISONS[kind]
        value = f"{p['exactly_once']}/{p['sent']} answered once with {expect.describe()}"
        if p["wrong"] or p["unanswered"]:
            value += f"; wrong {p['wrong'][:2]}, unanswered {p['unanswered']}"
        rows.append(
            Row(f"poison: {expect.label}", value, p["sent"] > 0 and p["exactly_once"] == p["sent"])
        )
    t = f["ticks"]
    rows.append(Row("schedule ticks (every 1 s)", f"{t['executed']} over {t['seconds']} s"))
    rows.append(Row("tick run twice after a crash/freeze", str(len(t["run_twice_after_fault"]))))
    rows.append(
        Row(
            "tick run twice, no fault to explain it (fired twice)",
            str(len(t["run_twice_unexplained"])),
            not t["run_twice_unexplained"],
        )
    )
    rows.append(
        Row(
            "longest stall of ordinary jobs",
            f"{seconds(f['longest_stall'])} at +{f['longest_stall_at']:.0f} s "
            f"(bound {seconds(options.max_stall)})",
            f["longest_stall"] <= options.max_stall,
        )
    )
    for kind, (median, worst, n) in sorted(f["recovery"].items()):
        rows.append(
            Row(f"recovery after {kind}", f"median {seconds(median)}, max {seconds(worst)} (n={n})")
        )
    lease = f["lease"]
    rows.append(
        Row(
            "lease renewals / elections / longest gap",
            f"{lease['renewals']} / {lease['elections']} / {seconds(lease['max_gap'])}",
        )
    )
    hb = f["heartbeats"]
    rows.append(
        Row("heartbeats seen (clouds / dispatchers)", f"{hb['clouds']} / {hb['dispatchers']}")
    )
    rows.append(Row("process restarts", str(f["restarts"])))
    rows.append(
        Row(
            "load average before / after",
            f"{f['load_average']['before']} | {f['load_average']['after']}",
        )
    )
    return rows
