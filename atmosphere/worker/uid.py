"""One cloud per uid: a hardened cloud's id is its user's uid (docs/security.md), so a second
process signed in as the same user would share the first one's inbox and record. Before it
registers, such a cloud makes sure no live cloud heartbeats under that id."""

from __future__ import annotations

import logging
import threading

from atmosphere.db.base import Database
from atmosphere.errors import ConfigError
from atmosphere.types import JSON

log = logging.getLogger(__name__)


def heartbeat_moved(before: JSON, after: JSON) -> bool:
    """True when a cloud record's heartbeat changed between two reads: its owner is alive."""
    return before is not None and after is not None and before != after


def ensure_uid_free(
    database: Database, record: str, uid: str, dead_after: float, cancel: threading.Event
) -> None:
    """Return once no live cloud holds ``record`` (the cloud record of ``uid``).

    A record left behind (a crash) is watched for ``dead_after`` seconds: every live cloud
    heartbeats within that time. Watching it, rather than comparing its server timestamp
    with this machine's clock, is immune to clock skew. A stop request ends the wait.

    Raises:
        ConfigError: another live cloud is signed in as ``uid``.
    """
    before = database.get(f"{record}/heartbeat")
    if before is None:
        return
    log.warning(
        "a cloud record for uid %s exists (a crashed cloud, or another process signed in as "
        "this user): watching its heartbeat for %.1fs before taking it over",
        uid,
        dead_after,
    )
    if cancel.wait(dead_after):
        return
    if heartbeat_moved(before, database.get(f"{record}/heartbeat")):
        log.error("another live cloud is signed in as uid %s; refusing to share its inbox", uid)
        raise ConfigError(
            f"another cloud is running as uid {uid!r}: its heartbeat moves. Each cloud process "
            "needs its own user (ATMOSPHERE_DB_UID and its own credentials, docs/security.md)"
        )
