"""Smoke test of the benchmarks runner: ``python -m bench --quick jobs`` end to end (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_jobs_bench_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "jobs", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RPC round trip p50" in done.stdout
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["parts"] == ["jobs"] and results["failed"] == []
    figures = {row["figure"]: row for row in results["rows"]}
    p50 = next(row for name, row in figures.items() if name.startswith("RPC round trip p50"))
    assert 0 < p50["value"] < 1000  # milliseconds
    assert p50["better"] == "lower"
    # Issue 9's rates: each batch ran to its last completion, counted.
    rates = [row for name, row in figures.items() if row["unit"] == "jobs/s"]
    assert len(rates) == 4 and all(row["value"] > 0 and row["better"] == "higher" for row in rates)
    writes = figures["DB writes per job, awaited, --prefetch 4"]["value"]
    # Batched writes carry many jobs each, so under one per job is possible; far fewer than one
    # per event either way.
    assert 0 < writes < 20
    assert figures["RSS idle: a cloud"]["value"] > 10  # MiB: a real Python process


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_rpc_trace_finds_every_mark_of_every_segment() -> None:
    # Keeps bench/tracepoints.py in step with the code it hooks: a renamed function shows here.
    done = subprocess.run(
        [sys.executable, "-m", "bench.trace", "--rpcs", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "is gone" not in done.stderr, done.stderr[-3000:]
    assert "(20 of 20 RPCs had every mark)" in done.stdout, done.stdout
