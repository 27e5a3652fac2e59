"""``atmosphere station``: refuses unsafe or impossible setups with a clear message."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from atmosphere.cli import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("ATMOSPHERE_STATION_TOKEN", raising=False)
    monkeypatch.delenv("ATMOSPHERE_DATABASE_URL", raising=False)
    return CliRunner()


def test_refuses_to_bind_beyond_loopback_without_a_token(runner: CliRunner) -> None:
    result = runner.invoke(app, ["station", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "token" in result.output and "0.0.0.0" in result.output


def test_says_when_no_database_answers(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import atmosphere.db.connect as connect_module
    from atmosphere.errors import ConfigError

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConfigError("no database is running at http://127.0.0.1:1?ns=x")

    monkeypatch.setattr(connect_module, "connect", refuse)
    result = runner.invoke(app, ["station", "--db-url", "http://127.0.0.1:1?ns=x", "--port", "0"])
    assert result.exit_code == 2
    assert "no database is running" in result.output
