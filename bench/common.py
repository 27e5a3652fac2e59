"""Shared helpers for the benchmarks: rows, medians and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class Row:
    """One printed figure, with an optional baseline to compare against."""

    part: str
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    better: str = ""  # "lower" or "higher": which way the figure (and its ratio) is better

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``measure`` ``runs`` times; return the median and every sample."""
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``samples`` by nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(rows: Iterable[Row]) -> None:
    """Print the rows as one aligned table (plain text, so logs keep it)."""
    header = ("part", "figure", "value", "unit", "baseline", "vs", "ratio", "better", "target")
    lines = [header]
    for r in rows:
        ratio = r.ratio
        lines.append(
            (
                r.part,
                r.figure,
                fmt(r.value),
                r.unit,
                fmt(r.baseline),
                r.baseline_label,
                f"{ratio:.2f}x" if ratio is not None else "-",
                r.better,
                r.target,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
