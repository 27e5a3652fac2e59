"""``python -m bench [--quick] [part ...]``: run the benchmark parts, print one table, save JSON.

Parts: ``jobs`` (the job system against Celery + Redis), ``db`` (the embedded database: writes/s,
delivery latency, and the 1 MB event against firebase-admin's listener), ``transport`` (client
CPU and latency per request of the HTTP stacks the database client could send with) and
``failover`` (dispatcher leader kills). No part named: all of them. ``--quick`` is a smoke run with small
counts; ``--runs N`` sets the runs per figure of ``jobs`` and ``db``. The rows also go to
``bench-output/results.json`` (``--out`` to change it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Row, print_table

Part = Callable[[argparse.Namespace], list[Row]]
DEFAULT_OUT = Path("bench-output") / "results.json"


def _jobs(args: argparse.Namespace) -> list[Row]:
    from bench import jobs

    plan = jobs.QUICK if args.quick else jobs.FULL
    if args.runs is not None:
        plan = dataclasses.replace(plan, runs=args.runs)
    return jobs.run(plan)


def _db(args: argparse.Namespace) -> list[Row]:
    from bench import db, listener

    runs = args.runs or (1 if args.quick else db.RUNS)
    return db.run(runs=runs) + listener.rows(runs=args.runs or (1 if args.quick else 5))


def _transport(args: argparse.Namespace) -> list[Row]:
    from bench import transport

    runs = args.runs or (2 if args.quick else 5)
    return transport.run(runs=runs, count=300 if args.quick else 2000)


def _failover(args: argparse.Namespace) -> list[Row]:
    # Its counts are fixed by the part itself (5 takeovers, 3 counted kills), quick or not.
    from bench import failover

    return failover.run()


PARTS: dict[str, Part] = {
    "jobs": _jobs,
    "db": _db,
    "transport": _transport,
    "failover": _failover,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="part",
        help=f"parts to run, in order (default: all of {', '.join(PARTS)})",
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small counts")
    parser.add_argument("--runs", type=int, help="runs per figure (default: each part's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return args  # fmt: skip


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def row_json(row: Row) -> dict[str, Any]:
    """One row as JSON, with its ratio."""
    return {**dataclasses.asdict(row), "ratio": row.ratio}


def write_results(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    """Save the rows and how they were measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "rows": [row_json(r) for r in rows]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; a part that fails is reported and the others still run."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    parts = args.parts or list(PARTS)
    started = time.time()
    rows: list[Row] = []
    failed: list[str] = []
    for name in parts:
        t0 = time.monotonic()
        print(f"== bench part {name} ...", file=sys.stderr, flush=True)
        try:
            rows += PARTS[name](args)
        except Exception as exc:  # noqa: BLE001 - one broken part must not hide the others
            print(f"== bench part {name} FAILED: {exc!r}", file=sys.stderr, flush=True)
            failed.append(name)
        print(f"== bench part {name}: {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    print_table(rows)
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "runs": args.runs,
        "parts": parts,
        "failed": failed,
        "machine": machine(),
    }
    write_results(args.out, rows, meta)
    print(f"results: {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
