"""The ``atmosphere db`` command line (typer.testing.CliRunner; no server is started)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from atmosphere.cli import app
from atmosphere.settings import DEFAULTS


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


def test_server_and_demo_options_default_to_the_settings_table() -> None:
    # The CLI mirrors settings.DEFAULTS, so a process started by hand finds the same server
    commands = {c.name: c for c in typer.main.get_command(app).commands.values()}  # type: ignore[attr-defined]
    defaults = {
        (command, p.name): p.default for command in ("db", "demo") for p in commands[command].params
    }
    assert defaults[("db", "host")] == DEFAULTS["db_host"]
    assert defaults[("db", "port")] == defaults[("demo", "db_port")] == DEFAULTS["db_port"]
    assert defaults[("db", "data_dir")] == defaults[("demo", "data_dir")] == DEFAULTS["data_dir"]
    assert defaults[("db", "fsync")] is DEFAULTS["fsync"]
    assert defaults[("demo", "station_port")] == DEFAULTS["station_port"]
