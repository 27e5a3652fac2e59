"""``atmosphere schedules ...`` through typer's CliRunner, on the in-memory database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from atmosphere.cli import app
from atmosphere.cli import schedules as cli
from atmosphere.errors import InvalidJob
from atmosphere.testing import MemoryDatabase
from atmosphere.validate import duration_text, parse_duration

runner = CliRunner()


class KeepOpen:
    """The shared test database; each command's close() leaves it usable."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def close(self) -> None:
        pass


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> MemoryDatabase:
    database = MemoryDatabase()
    monkeypatch.setattr(cli, "open_database", lambda settings: KeepOpen(database))
    monkeypatch.delenv("ATMOSPHERE_ROOT", raising=False)
    return database


def run(*args: str) -> Any:
    return runner.invoke(app, ["schedules", *args], env={"COLUMNS": "160"})


def test_add_list_pause_resume_run_now_remove(db: MemoryDatabase) -> None:
    result = run(
        "add", "nightly-sync", "syncUser", "--cron", "0 3 * * *", "--tz", "Europe/Berlin",
        "--data", '{"full": true}', "--misfire", "catch_up",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "defined: nightly-sync (cron 0 3 * * * Europe/Berlin)" in result.output
    stored = db.get("atmosphere/live/schedules/nightly-sync")
    assert stored["job"] == {"type": "syncUser", "data": {"full": True}}
    assert stored["misfire"] == "catch_up"

    assert run("add", "beat", "ping", "--every", "5m").exit_code == 0
    assert db.get("atmosphere/live/schedules/beat/every") == 300

    rows = json.loads(run("list", "--json").output)
    assert [r["name"] for r in rows] == ["beat", "nightly-sync"]
    assert rows[0]["when"] == "every 5m" and rows[0]["next"] is not None

    assert run("pause", "beat").exit_code == 0
    assert db.get("atmosphere/live/schedules/beat/paused") is True
    table = run("list").output
    assert "paused" in table and "nightly-sync" in table
    assert run("resume", "beat").exit_code == 0
    assert db.get("atmosphere/live/schedules/beat/paused") is False
    assert run("run-now", "beat").exit_code == 0
    assert isinstance(db.get("atmosphere/live/schedules/beat/run_now"), int)
    assert run("remove", "beat").exit_code == 0
    assert db.get("atmosphere/live/schedules/beat") is None


def test_redefining_the_same_schedule_is_reported_unchanged(db: MemoryDatabase) -> None:
    assert run("add", "beat", "ping", "--every", "60").exit_code == 0
    assert "unchanged: beat" in run("add", "beat", "ping", "--every", "60s").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x", "ping"], "exactly one"),
        (["add", "x", "ping", "--cron", "0 3 * *"], "5 fields"),
        (["add", "x", "ping", "--every", "soon"], "duration"),
        (["add", "x", "ping", "--every", "5m", "--data", "{oops"], "not JSON"),
        (["pause", "ghost"], "no schedule named 'ghost'"),
        (["remove", "ghost"], "no schedule named 'ghost'"),
    ],
)
def test_errors_are_one_clear_line(db: MemoryDatabase, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["pause", "resume", "run-now"])
def test_a_malformed_stored_schedule_is_one_clear_line(db: MemoryDatabase, command: str) -> None:
    # Given a schedule record garbled in the database
    db.set("atmosphere/live/schedules/broken", {"job": "not an object", "every": 60})
    result = run(command, "broken")
    # I expect an error line and exit code 1, not an uncaught exception
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error: schedule 'broken': schedule.job is not an object" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (" 1.5H ", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m s", "-5m", "5w", "1e3"])
def test_parse_duration_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidJob, match="is not a duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_duration_text_reads_back_as_the_same_seconds(seconds: int) -> None:
    assert parse_duration(duration_text(seconds)) == seconds
