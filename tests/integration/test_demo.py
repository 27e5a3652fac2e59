"""The README's first command: ``atmosphere demo`` runs a whole Atmosphere and real jobs succeed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = pytest.mark.slow


def test_demo_runs_real_jobs_and_stops_cleanly(tmp_path: Path) -> None:
    # Given a fresh directory and free ports
    station_port, db_port = free_port(), free_port()
    # When the demo runs for a few seconds
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "atmosphere",
            "demo",
            "--duration",
            "6",
            "--station-port",
            str(station_port),
            "--db-port",
            str(db_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    # Then it exits 0, having seen jobs succeed, and says where the station is
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"http://localhost:{station_port}" in proc.stdout
    succeeded = [int(n) for n in re.findall(r"(\d+) ok", proc.stdout)]
    assert succeeded and max(succeeded) > 0, proc.stdout
    # and the embedded database kept its data in the directory it was given
    assert (tmp_path / "data").is_dir()
    assert any((tmp_path / "data").iterdir())
