"""The one table a suite prints, its JSON twin, and the verdict (exit status)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the table; ``ok`` False fails the run, None is information only."""

    name: str
    value: str
    ok: bool | None = None


def render(title: str, rows: list[Row]) -> str:
    """The table as text."""
    width = max(len(r.name) for r in rows) if rows else 0
    mark = {True: "ok  ", False: "FAIL", None: "    "}
    lines = [title, "-" * len(title)]
    lines += [f"{mark[r.ok]} {r.name:<{width}}  {r.value}" for r in rows]
    return "\n".join(lines)


def failures(rows: list[Row]) -> list[str]:
    """The names of the rows that failed."""
    return [r.name for r in rows if r.ok is False]


def write_json(path: Path, title: str, rows: list[Row], figures: dict[str, Any]) -> None:
    """``{title, passed, failures, rows, figures}`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "title": title,
        "passed": not failures(rows),
        "failures": failures(rows),
        "rows": [asdict(r) for r in rows],
        "figures": figures,
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def load_average() -> str:
    """The 1/5/15-minute load averages, for the record (the machine is shared)."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def seconds(value: float) -> str:
    """``1.23 s``."""
    return f"{value:.2f} s"
