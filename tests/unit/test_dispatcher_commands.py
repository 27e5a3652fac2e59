"""The dispatcher and status commands fail clearly on a bad configuration (CliRunner)."""

from __future__ import annotations

from typer.testing import CliRunner

from atmosphere.cli import app
from tests.support import free_port

runner = CliRunner()


def test_status_without_a_running_database_says_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}?ns=nothing"
    result = runner.invoke(app, ["status", "--db-url", url])
    assert result.exit_code == 2
    assert "no database is running" in result.output


def test_dispatcher_rejects_a_bad_database_url() -> None:
    result = runner.invoke(app, ["dispatcher", "--db-url", "ftp://example.com", "--no-station"])
    assert result.exit_code == 2
    assert "not http(s)://" in result.output
