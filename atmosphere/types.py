"""Shared type aliases (kept light: no imports of the framework)."""

from __future__ import annotations

from typing import Any, TypedDict

# A JSON value as it travels on the wire. Kept as Any so handlers stay easy to type.
JSON = Any
JSONObject = dict[str, Any]


class Ticket(TypedDict):
    """What a handler receives beside ``data``: which job it is running."""

    type: str
    name: str
    id: str
