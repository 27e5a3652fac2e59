"""The station's live mirror: follows writes, reports the stream's health, wakes waiters."""

from __future__ import annotations

import asyncio

from atmosphere.station.live import LiveState
from atmosphere.testing import MemoryDatabase
from tests.unit.station_helpers import PATHS


def test_follows_writes_and_stream_health() -> None:
    db = MemoryDatabase()
    live = LiveState(db, PATHS, dead_after=6.0)
    live.start()
    try:
        assert live.connected and live.snapshot()["queued"] == 0
        before = live.version
        db.set(PATHS.queue("a", "j1"), {"type": "a", "name": "n"})
        db.drain()
        assert live.version > before
        assert live.snapshot()["queues"] == {"a": 1}
        assert live.get("queue/a/j1") == {"type": "a", "name": "n"}
        db.disconnect()
        db.drain()
        assert live.snapshot()["connected"] is False  # the page shows "Database unreachable"
        db.reconnect()
        db.drain()
        assert live.snapshot()["connected"] is True
    finally:
        live.stop()


def test_snapshot_json_is_serialised_once_per_snapshot() -> None:
    db = MemoryDatabase()
    live = LiveState(db, PATHS, dead_after=6.0)
    live.start()
    try:
        first = live.snapshot_json()
        assert live.snapshot_json() is first
        db.set(PATHS.queue("a", "j1"), {"type": "a"})
        db.drain()
        assert live.snapshot_json() is not first
    finally:
        live.stop()


def test_waiters_on_the_event_loop_are_woken_by_writes() -> None:
    db = MemoryDatabase()
    live = LiveState(db, PATHS, dead_after=6.0)
    live.start()

    async def wait_for_change() -> bool:
        changed = live.subscribe()
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, db.set, PATHS.clouds("c1"), {"name": "c1", "types": {"a": True}}
            )
            await asyncio.wait_for(changed.wait(), 5)
            return True
        finally:
            live.unsubscribe(changed)

    try:
        assert asyncio.run(wait_for_change())
    finally:
        live.stop()
