"""Prometheus text exposition (format 0.0.4) of the station's view models (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmosphere.stats import COUNTERS, percentile
from atmosphere.wiretime import from_ms

from .series import merge_histograms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.95, 0.99)


def escape_label(value: str) -> str:
    """Escape a label value: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Collects metric families and renders them in Prometheus text format."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        """Start a metric family with its HELP and TYPE lines."""
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        """Add one sample to the current family."""
        self._lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def render(self) -> str:
        """The whole exposition, newline-terminated."""
        return "\n".join(self._lines) + "\n"


def render_metrics(
    snapshot: Mapping[str, Any],
    totals: Mapping[str, Mapping[str, float]],
    recent_minutes: Mapping[str, Any],
) -> str:
    """Metrics from a live snapshot, per-type stats totals and the last few stats minutes."""
    out = Exposition()
    out.family("atmosphere_queue_depth", "gauge", "Jobs waiting in the queue, per type.")
    for job_type, depth in sorted(snapshot.get("queues", {}).items()):
        out.sample("atmosphere_queue_depth", depth, type=job_type)
    out.family(
        "atmosphere_jobs_delayed", "gauge", "Jobs waiting for their eta (retries, countdowns)."
    )
    out.sample("atmosphere_jobs_delayed", snapshot.get("delayed", 0))
    out.family("atmosphere_jobs_assigned", "gauge", "Jobs assigned to clouds and not finished.")
    out.sample("atmosphere_jobs_assigned", snapshot.get("assigned", 0))

    summary = snapshot.get("cloud_summary", {})
    out.family("atmosphere_clouds", "gauge", "Registered clouds by condition.")
    for state in ("up", "dead", "busy", "idle", "draining"):
        out.sample("atmosphere_clouds", summary.get(state, 0), state=state)
    out.family("atmosphere_cloud_slots", "gauge", "Job slots of live clouds, total and in use.")
    out.sample("atmosphere_cloud_slots", summary.get("slots", 0), kind="total")
    out.sample("atmosphere_cloud_slots", summary.get("slots_used", 0), kind="used")

    lease = snapshot.get("leadership", {}).get("lease", {})
    out.family("atmosphere_dispatcher_leader", "gauge", "1 when a dispatcher holds a valid lease.")
    out.sample("atmosphere_dispatcher_leader", 1 if lease.get("valid") else 0)
    out.family("atmosphere_dispatchers", "gauge", "Dispatchers announced (leader and standbys).")
    out.sample("atmosphere_dispatchers", len(snapshot.get("leadership", {}).get("dispatchers", [])))

    for counter in COUNTERS:
        name = f"atmosphere_jobs_{counter}_total"
        out.family(name, "counter", f"Jobs {counter.replace('_', ' ')}, per type (from stats/).")
        for job_type in sorted(totals):
            out.sample(name, totals[job_type].get(counter, 0.0), type=job_type)

    _latency(out, recent_minutes)
    return out.render()


def _latency(out: Exposition, recent_minutes: Mapping[str, Any]) -> None:
    per_type: dict[str, list[Mapping[str, Any]]] = {}
    for record in recent_minutes.values():
        if not isinstance(record, dict):
            continue
        for job_type, rec in record.items():
            if isinstance(rec, dict) and isinstance(rec.get("latency"), dict):
                per_type.setdefault(job_type, []).append(rec["latency"])
    name = "atmosphere_job_latency_seconds"
    out.family(name, "gauge", "Submit-to-finish latency quantiles over the last 5 minutes.")
    for job_type in sorted(per_type):
        merged = merge_histograms(per_type[job_type])
        for q in QUANTILES:
            value = percentile(merged, q)
            if value is not None:
                out.sample(name, from_ms(value), type=job_type, quantile=str(q))
