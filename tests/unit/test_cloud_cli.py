"""``atmosphere cloud`` and ``atmosphere submit``: argument errors, through typer's CliRunner."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from atmosphere.app import Atmosphere
from atmosphere.cli import app
from atmosphere.cli.cloud import load_app

runner = CliRunner()


def test_load_app_finds_the_one_app_of_a_module() -> None:
    loaded = load_app("tests.integration.jobs_tasks")
    assert isinstance(loaded, Atmosphere) and "echo" in loaded.tasks
    assert load_app("tests.integration.jobs_tasks:app") is loaded


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_here", "cannot import"),
        ("json", "holds 0 Atmosphere apps"),
        ("tests.integration.jobs_tasks:make_app", "is not an Atmosphere app"),
    ],
)
def test_load_app_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        load_app(spec)


def test_cloud_without_a_database_exits_2_with_a_clear_error() -> None:
    result = runner.invoke(
        app,
        [
            "cloud",
            "tests.integration.jobs_tasks",
            "--db-url",
            "http://127.0.0.1:9?ns=x",
            "--wait",
            "0",
        ],
    )
    assert result.exit_code == 2
    assert "no database is running" in result.output


def test_cloud_with_a_bad_module_exits_2() -> None:
    result = runner.invoke(app, ["cloud", "no_such_module_here"])
    assert result.exit_code == 2 and "cannot import" in result.output


def test_submit_refuses_data_that_is_not_json() -> None:
    result = runner.invoke(app, ["submit", "echo", "--data", "{bad"])
    assert result.exit_code == 2 and "not JSON" in result.output
