"""The database contract every Atmosphere part codes against.

Two implementations: ``atmosphere.db.client.FirebaseDatabase`` (firebase-admin REST + our own
chunked SSE listener; talks to real Firebase, the official emulator or the embedded server) and
``atmosphere.testing.MemoryDatabase`` (in-memory, for unit tests of cloud/dispatcher logic only).

Paths are slash-separated and relative to the database root ("atmosphere/live/queue").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from atmosphere.types import JSON

SERVER_TIMESTAMP: dict[str, Any] = {".sv": "timestamp"}


def increment(delta: int | float) -> dict[str, Any]:
    """A server value that atomically adds ``delta`` to the number stored at its path."""
    return {".sv": {"increment": delta}}


# on_event(kind, path, data): kind is "put" or "patch"; path is relative to the listened
# location and starts with "/" ("/" itself for the location). The first event after every
# (re)connect is a "put" at "/" with the whole current value, so callers resync for free.
EventCallback = Callable[[str, str, JSON], None]
# on_status(connected): called with False when the stream drops, True when it is back.
StatusCallback = Callable[[bool], None]
# on_batch(): called after the events that arrived together (one read of the stream) have all
# been given to on_event, so a listener that acts on events can act once per burst, not per event.
BatchCallback = Callable[[], None]


class Listener(Protocol):
    """A running stream subscription."""

    @property
    def connected(self) -> bool: ...

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the initial snapshot has been delivered; False on timeout."""
        ...

    def close(self) -> None:
        """Stop the stream and its thread; no callback runs after this returns."""
        ...


class Database(Protocol):
    """Reads, writes and streams on one Firebase Realtime Database."""

    def get(self, path: str, *, shallow: bool = False) -> JSON: ...

    def query(
        self,
        path: str,
        *,
        order_by: str,
        start_at: JSON = None,
        end_at: JSON = None,
        equal_to: JSON = None,
        limit_to_first: int | None = None,
        limit_to_last: int | None = None,
    ) -> dict[str, JSON]:
        """Children of ``path`` ordered by ``order_by`` ("$key", "$value" or a child path)."""
        ...

    def set(self, path: str, value: JSON) -> None: ...

    def update(self, path: str, values: Mapping[str, JSON]) -> None:
        """Atomic multi-path update: each key is a path below ``path``; None deletes."""
        ...

    def push(self, path: str, value: JSON) -> str:
        """Store ``value`` under a new chronological id below ``path``; return the id."""
        ...

    def delete(self, path: str) -> None: ...

    def transaction(self, path: str, fn: Callable[[JSON], JSON]) -> JSON:
        """Compare-and-set loop; ``fn`` may run several times. Returns the value written."""
        ...

    def new_id(self) -> str:
        """A fresh push id made on the client (same format and order as the server's)."""
        ...

    def listen(
        self,
        path: str,
        on_event: EventCallback,
        *,
        on_status: StatusCallback | None = None,
        on_batch: BatchCallback | None = None,
    ) -> Listener: ...

    def close(self) -> None:
        """Close every listener and connection this database opened."""
        ...
