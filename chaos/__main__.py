"""``python -m chaos run|soak|backlog``: run a suite, print its table, exit non-zero on failure."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from .faults import KINDS
from .fleet import Timing
from .report import Row, failures, render, write_json
from .stream import Options, run_stream

# The soak's scaled-down intervals: ten minutes hold well over 10,000 renewals and heartbeats.
SOAK_TIMING = Timing(heartbeat=0.05, dead_after=0.6, lease=0.3)
SOAK_MIN_BEATS_PER_MINUTE = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    sub = parser.add_subparsers(dest="suite", required=True)
    run = sub.add_parser("run", help="the mixed stream under kill -9, SIGSTOP and poison jobs")
    run.add_argument("--minutes", type=float, default=5.0)
    run.add_argument("--every", type=float, default=10.0, help="seconds between faults")
    run.add_argument("--faults", default=",".join(KINDS), help="comma-separated fault kinds")
    run.add_argument("--max-stall", type=float, default=30.0)
    soak = sub.add_parser("soak", help="the stream with lease and heartbeats scaled down")
    soak.add_argument("--minutes", type=float, default=10.0)
    soak.add_argument("--max-stall", type=float, default=5.0)
    soak.add_argument("--lease", type=float, default=SOAK_TIMING.lease)
    soak.add_argument("--heartbeat", type=float, default=SOAK_TIMING.heartbeat)
    soak.add_argument("--dead-after", type=float, default=SOAK_TIMING.dead_after)
    backlog = sub.add_parser("backlog", help="drain a queue of many jobs")
    backlog.add_argument("--jobs", type=int, default=100_000)
    for p in (run, soak):
        p.add_argument(
            "--db-owner",
            choices=("dispatcher", "harness"),
            default="dispatcher",
            help="who starts and restarts the database: the first dispatcher (the embedded "
            "default) or the harness (as an operator's supervisor would)",
        )
    for p in (run, soak, backlog):
        p.add_argument("--out", type=Path, default=Path("chaos-output"), help="JSON goes here")
        p.add_argument("--workdir", type=Path, default=None, help="logs and data (default: tmp)")
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--fsync", action="store_true", help="run the database with --fsync")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the suite named in ``argv``; 0 when every check passed."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos: %(message)s")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{args.suite}-"))
    logging.info("%s: processes' logs and data in %s", args.suite, workdir)
    extra: dict[str, Any] = {} if args.seed is None else {"seed": args.seed}
    if args.suite != "backlog":
        extra["db_owner"] = args.db_owner
    if args.suite == "backlog":
        from .backlog import run_backlog

        title = f"chaos backlog: {args.jobs} queued jobs"
        rows, figures = run_backlog(args.jobs, workdir, fsync=args.fsync)
    elif args.suite == "soak":
        timing = Timing(heartbeat=args.heartbeat, dead_after=args.dead_after, lease=args.lease)
        title = f"chaos soak: {args.minutes:g} min, lease {timing.lease:g} s, heartbeat "
        title += f"{timing.heartbeat:g} s, dead after {timing.dead_after:g} s"
        options = Options(
            minutes=args.minutes,
            workdir=workdir,
            timing=timing,
            faults=(),
            poison_every=None,
            max_stall=args.max_stall,
            fsync=args.fsync,
            **extra,
        )
        rows, figures = run_stream(options)
        rows += soak_rows(figures, args.minutes)
    else:
        title = f"chaos run: {args.minutes:g} min, a fault every {args.every:g} s"
        kinds = tuple(k for k in args.faults.split(",") if k)
        options = Options(
            minutes=args.minutes,
            workdir=workdir,
            faults=kinds,
            fault_every=args.every,
            max_stall=args.max_stall,
            fsync=args.fsync,
            **extra,
        )
        rows, figures = run_stream(options)
    figures["workdir"] = str(workdir)
    print(render(title, rows), flush=True)
    write_json(args.out / f"{args.suite}.json", title, rows, figures)
    failed = failures(rows)
    if failed:
        print(f"FAILED: {', '.join(failed)} (logs in {workdir})", file=sys.stderr)
    return 1 if failed else 0


def soak_rows(figures: dict[str, object], minutes: float) -> list[Row]:
    """The soak's own checks: enough renewals and heartbeats, and no lease lapse."""
    lease = figures["lease"]
    beats = figures["heartbeats"]
    assert isinstance(lease, dict) and isinstance(beats, dict)
    total = int(lease["renewals"]) + int(beats["clouds"]) + int(beats["dispatchers"])
    wanted = int(SOAK_MIN_BEATS_PER_MINUTE * minutes)
    return [
        Row("renewals + heartbeats", f"{total} (at least {wanted})", total >= wanted),
        Row("lease lapses (a gap over one lease)", str(len(lease["lapses"])), not lease["lapses"]),
        Row(
            "leader elections after the first",
            str(int(lease["elections"])),
            int(lease["elections"]) == 0,
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
