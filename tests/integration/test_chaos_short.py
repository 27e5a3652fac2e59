"""The chaos suite, short (CI): about 75 s of the mixed stream under every fault and poison.

``python -m chaos run`` as a real process, the way ``nox -s chaos`` runs it for minutes; the
table's JSON must show nothing lost, no duplicate response and every poison answered once
with its error. The long runs (``nox -s chaos``) are not part of the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_short_chaos_run_loses_nothing_and_answers_every_poison_once(tmp_path: Path) -> None:
    # Given the fleet under the stream, with a fault every 6 s (each kind at least twice)
    out = tmp_path / "out"
    args = ["run", "--minutes", "1.25", "--every", "6", "--max-stall", "30"]
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", *args, "--out", str(out), "--workdir", str(tmp_path / "w")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    # I expect one table, a clean verdict, and figures that say why
    report = json.loads((out / "run.json").read_text())
    figures = report["figures"]
    explained = json.dumps(
        {k: figures.get(k) for k in ("contradiction_details", "lost", "fault_log", "failed")}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:] + explained[-3000:]
    assert report["passed"] and report["failures"] == []
    assert figures["lost"] == [] and figures["duplicate_responses"] == {}
    assert figures["executed_twice_unexplained"] == {}
    assert figures["ticks"]["executed"] > 0 and figures["ticks"]["run_twice_unexplained"] == {}
    for kind, poison in figures["poisons"].items():
        assert poison["sent"] >= 1 and poison["exactly_once"] == poison["sent"], kind
    assert set(figures["faults"]) == {
        "kill_cloud", "kill_leader", "kill_db", "freeze_cloud", "freeze_leader", "freeze_db",
    }  # fmt: skip
    assert figures["submitted"] > 100 and figures["answered"] > 100
