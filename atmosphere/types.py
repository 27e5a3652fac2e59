"""Shared type aliases (kept light: no imports of the framework)."""

from __future__ import annotations

from typing import Any, TypedDict

# A JSON value as it travels on the wire. Kept as Any so handlers stay easy to type.
JSON = Any
JSONObject = dict[str, Any]


class _Later:
    def __repr__(self) -> str:
        return "LATER"


# Returned by a handler to say "I will call app.done_with(ticket, error, result) myself". Here,
# not in the cloud runtime, so the public API names it without loading the runtime.
LATER: Any = _Later()


class Ticket(TypedDict):
    """What a handler receives beside ``data``: which job it is running."""

    type: str
    name: str
    id: str
