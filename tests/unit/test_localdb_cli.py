"""The ``atmosphere db`` command line (typer.testing.CliRunner; no server is started)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from atmosphere.cli import app


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["db", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--data-dir", "--token", "--fsync", "--rules", "--max-body"):
        assert option in result.output


def test_non_loopback_without_token_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["db", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        env={"ATMOSPHERE_DB_TOKEN": None},
    )
    assert result.exit_code == 2
    assert not (tmp_path / "server.json").exists()
