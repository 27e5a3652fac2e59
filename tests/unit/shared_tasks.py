"""A reusable module that does not own the app: its tasks use the module-level ``@task``."""

from __future__ import annotations

from typing import Any

from atmosphere import Atmosphere, Ticket, task


@task
def normalise_email(ticket: Ticket, data: Any) -> Any:
    return str(data).strip().lower()


@task("geoLookup", timeout=5)
def geo_lookup(ticket: Ticket, data: Any) -> Any:
    return {"city": data, "by": ticket["type"]}


# A task of some app the module happens to hold or import: include() leaves it alone.
_elsewhere = Atmosphere("elsewhere")


@_elsewhere.task("internal")
def internal(ticket: Ticket, data: Any) -> Any:
    return data
