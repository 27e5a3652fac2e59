"""The dispatcher process's wiring: the Weather Station is started through what the CLI passes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from atmosphere.scheduler.service import start_station
from atmosphere.testing import MemoryDatabase


class Handle:
    url = "http://127.0.0.1:1"


def test_the_station_starts_on_the_dispatchers_database() -> None:
    db = MemoryDatabase()
    given: list[Any] = []
    handle = Handle()

    def start(database: Any) -> Handle:
        given.append(database)
        return handle

    assert start_station(start, db) is handle
    assert given == [db]


def test_a_station_that_cannot_start_leaves_the_dispatcher_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def start(database: Any) -> Handle:
        raise OSError("address already in use")

    with caplog.at_level(logging.WARNING):
        assert start_station(start, MemoryDatabase()) is None
    assert "address already in use" in caplog.text


def test_the_dispatcher_package_does_not_import_the_station() -> None:
    import ast
    from pathlib import Path

    import atmosphere.scheduler

    for path in Path(atmosphere.scheduler.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "importlib" not in text, path  # no dependency hidden in a string
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("atmosphere.station"), path
