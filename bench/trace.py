"""``python -m bench.trace [--rpcs N] [--timeline]``: where one RPC's time goes, hop by hop.

Starts the embedded server, a dispatcher and one default cloud as real processes, traced
(``bench/tracepoints.py``, put on their PYTHONPATH through ``bench/_tracesite``: the code under
test is unchanged), makes ``N`` sequential ``noop.delay(i).get()`` from this process (the maker,
traced too), merges every process's marks into one timeline (CLOCK_MONOTONIC is shared by all
processes) and prints, for each segment of the path below, its median and quartiles over the
RPCs. ``bench jobs``' hop means come from the job record's timestamps, whole milliseconds
apart; these are microseconds, and split the hops further:

    maker: delay() -> its write starts          (building and encoding the job)
    maker write -> the server reads it          (the client's send, the server waking)
    server: -> the event to the dispatcher      (parse, commit, render the event)
    delivery to the dispatcher                  (its stream thread reads the chunk)
    dispatcher: event -> its flush starts       (hand-off to its loop, decide, build writes)
    ... and so on through the cloud and back to the maker: ``SEGMENTS``.

Each mark costs a few microseconds, so the total is a little above an untraced run's.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import tracepoints
from bench.common import percentile

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent / "_tracesite"


@dataclass(frozen=True)
class Line:
    """One mark: when, which process (by role), which thread, what."""

    ns: int
    role: str
    thread: str
    label: str


@dataclass(frozen=True)
class Segment:
    """From the previous segment's end to the first later mark of ``role`` whose label starts
    with ``label`` (and whose thread name contains ``thread``, or one of its ``|``-separated
    alternatives)."""

    name: str
    role: str
    label: str
    thread: str = ""


LIVE, INBOX, REPLIES = "/atmosphere/live", "/atmosphere/live/inbox", "/atmosphere/replies"

SEGMENTS = (
    Segment("maker: delay() -> its write starts", "maker", "request PATCH", "MainThread"),
    Segment("maker's write -> the server reads it", "server", "server.received"),
    Segment("server: -> event to the dispatcher", "server", f"server.event {LIVE}<"),
    Segment("delivery to the dispatcher", "dispatcher", "read>", LIVE),
    Segment("dispatcher: event -> flush starts", "dispatcher", "dispatcher.flush<"),
    # The dispatcher steps on its live stream's thread (inline events), timers on its loop's.
    Segment(
        "dispatcher: flush -> its write starts", "dispatcher", "request PATCH", f"dispatcher|{LIVE}"
    ),
    Segment("dispatcher's write -> the server reads it", "server", "server.received"),
    Segment("server: -> event to the cloud's inbox", "server", f"server.event {INBOX}"),
    Segment("delivery to the cloud", "cloud", "read>", INBOX),
    Segment("cloud: event -> handler starts", "cloud", "cloud.run<"),
    # A default cloud runs its job on the inbox stream's thread, others on a job thread.
    Segment("cloud: handler -> completion write starts", "cloud", "request PATCH", "job|/inbox/"),
    Segment("cloud's write -> the server reads it", "server", "server.received"),
    Segment("server: -> reply event to the maker", "server", f"server.event {REPLIES}"),
    Segment("delivery to the maker", "maker", "read>", REPLIES),
    Segment("maker: reply -> get() returns", "maker", "RPC>"),
)


def read_lines(log_dir: str) -> list[Line]:
    """Every process's marks, merged in time order, each process named by its role."""
    lines: list[Line] = []
    for name in glob.glob(os.path.join(log_dir, "*.log")):
        role = "maker"
        with open(name) as f:
            for raw in f:
                ns, _pid, thread, label = raw.rstrip("\n").split(" ", 3)
                if label.startswith("started "):
                    words = label.split()
                    role = {"db": "server", "dispatcher": "dispatcher", "cloud": "cloud"}.get(
                        words[1] if len(words) > 1 else "", "maker"
                    )
                lines.append(Line(int(ns), role, thread, label))
    lines.sort(key=lambda line: line.ns)
    return lines


def rpc_windows(lines: list[Line]) -> Iterator[list[Line]]:
    """The marks between each ``RPC< i`` and its ``RPC> i``."""
    start: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.label.startswith("RPC< "):
            start[line.label[5:]] = i
        elif line.label.startswith("RPC> ") and line.label[5:] in start:
            yield lines[start[line.label[5:]] : i + 1]


def split(window: list[Line], segments: tuple[Segment, ...] = SEGMENTS) -> list[int] | None:
    """Each segment's duration in ns within one RPC's window (pure); None if a mark is missing."""
    out, at, prev = [], 0, window[0].ns
    for seg in segments:
        while at < len(window) and not _matches(window[at], seg):
            at += 1
        if at == len(window):
            return None
        out.append(window[at].ns - prev)
        prev = window[at].ns
    return out


def _matches(line: Line, seg: Segment) -> bool:
    return (
        line.role == seg.role
        and line.label.startswith(seg.label)
        and any(thread in line.thread for thread in seg.thread.split("|"))
    )


def report(lines: list[Line], timeline: bool = False) -> str:
    """The segment table (medians and quartiles in us) of the traced RPCs."""
    windows = list(rpc_windows(lines))
    splits = [s for s in (split(w) for w in windows) if s is not None]
    if not splits:
        return f"no RPC had every mark ({len(windows)} traced): was a trace point renamed?"
    totals = [float(w[-1].ns - w[0].ns) for w in windows]
    rows = [f"{'segment':44} {'p25':>6} {'p50':>6} {'p75':>6}  (us)"]
    medians = 0.0
    for i, seg in enumerate(SEGMENTS):
        column = [s[i] / 1000 for s in splits]
        median = percentile(column, 0.5)
        medians += median
        rows.append(
            f"{seg.name:44} {percentile(column, 0.25):6.0f} {median:6.0f} "
            f"{percentile(column, 0.75):6.0f}"
        )
    rows.append(f"{'sum of the medians':44} {'':6} {medians:6.0f}")
    rows.append(
        f"{'RPC, whole (traced)':44} {percentile(totals, 0.25) / 1000:6.0f} "
        f"{statistics.median(totals) / 1000:6.0f} {percentile(totals, 0.75) / 1000:6.0f}"
        f"  ({len(splits)} of {len(windows)} RPCs had every mark)"
    )
    if timeline:
        middle = sorted(windows, key=lambda w: w[-1].ns - w[0].ns)[len(windows) // 2]
        rows += ["", "the median RPC, every mark:"]
        for line in middle:
            rows.append(
                f"{(line.ns - middle[0].ns) / 1000:8.0f} us  {line.role:10} {line.thread[:24]:24} "
                f"{line.label[:90]}"
            )
    return "\n".join(rows)


def run(rpcs: int, log_dir: str) -> list[Line]:
    """Start a traced fleet (server, dispatcher, one default cloud), make the RPCs, stop it."""
    from bench.jobs import embedded_server, fleet_on

    os.environ[tracepoints.ENV] = log_dir
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    tracepoints.install(log_dir)
    with embedded_server() as server, fleet_on(server, "trace", 1) as fleet:
        fleet.use_clouds(0)
        for i in range(100):  # warm up: connections open, code paths hot
            fleet.noop.delay(i).get(timeout=30)
        for i in range(rpcs):
            tracepoints.mark(f"RPC< {i}")
            fleet.noop.delay(i).get(timeout=30)
            tracepoints.mark(f"RPC> {i}")
    tracepoints.flush()  # the children have exited: their lines are on disk
    return read_lines(log_dir)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.trace", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rpcs", type=int, default=300, help="sequential RPCs to trace (300)")
    parser.add_argument("--timeline", action="store_true", help="print the median RPC's marks")
    parser.add_argument("--keep", metavar="DIR", help="write the logs to DIR and keep them")
    args = parser.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        print(report(run(args.rpcs, args.keep), args.timeline))
        return
    with tempfile.TemporaryDirectory(prefix="atmosphere-trace-") as log_dir:
        print(report(run(args.rpcs, log_dir), args.timeline))


if __name__ == "__main__":
    main()
