"""The RTDB client: configuration -> a connected Database, plus a fast SSE listener.

``from atmosphere.db import FirebaseDatabase, Mirror`` works; the client (which loads
firebase-admin and google-auth for its credential) is imported on first use, so code that only
needs the contract (``base``) stays light. ``connect`` lives in ``atmosphere.db.connect`` (a
package attribute of that name would clash with the module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import SERVER_TIMESTAMP as SERVER_TIMESTAMP
from .base import Database as Database
from .base import Listener as Listener
from .base import increment as increment

if TYPE_CHECKING:
    from .client import FirebaseDatabase as FirebaseDatabase
    from .mirror import Mirror as Mirror
    from .stream import StreamListener as StreamListener

_LAZY = {
    "FirebaseDatabase": "client",
    "Mirror": "mirror",
    "StreamListener": "stream",
}

__all__ = [
    "SERVER_TIMESTAMP",
    "Database",
    "FirebaseDatabase",
    "Listener",
    "Mirror",
    "StreamListener",
    "increment",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
