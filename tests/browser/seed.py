"""Realistic station data written per the protocol: clouds, jobs, stats, schedules, leadership.

Used by the browser tests (and handy for a demo): every record is what makers, clouds and the
dispatcher would write, so the station is exercised on the real layout.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from typing import Any

from atmosphere.db.base import Database
from atmosphere.paths import Paths
from atmosphere.stats import COUNTERS, bucket_of, minute_key

TYPES = ("syncUser", "sendEmail", "resizeImage", "billing")
XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_DATA = {
    "html": "<script>window.__xss=2</script>",
    "img": "<img src=x onerror=window.__xss=3>",
    "quote": "\"'><svg onload=window.__xss=4>",
}
TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/tasks.py", line 42, in charge
    receipt = gateway.charge(card, amount)
  File "/srv/app/gateway.py", line 17, in charge
    raise PaymentDeclined(f"card {card[-4:]} declined: insufficient funds")
PaymentDeclined: card 4242 declined: insufficient funds
"""


def _batches(updates: dict[str, Any], size: int = 400) -> Iterator[dict[str, Any]]:
    items = list(updates.items())
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])


def apply(db: Database, updates: dict[str, Any]) -> None:
    """Write root-relative updates in a few multi-path PATCHes."""
    for batch in _batches(updates):
        db.update("", batch)


def cloud_record(
    name: str, types: list[str], heartbeat: Any, busy: int, slots: int
) -> dict[str, Any]:
    """A CloudInfo as a cloud registers it."""
    rng = random.Random(name)
    return {
        "name": name,
        "types": {t: True for t in types},
        "slots": slots,
        "load": round(rng.uniform(0.05, 3.5), 2),
        "running": busy,
        "state": "up",
        "heartbeat": heartbeat,
        "started": int(time.time() * 1000) - rng.randint(60_000, 86_400_000),
        "host": f"worker-{rng.randint(1, 40):02d}.prod",
        "pid": rng.randint(1000, 65000),
        "done": rng.randint(0, 50_000),
        "failed": rng.randint(0, 40),
    }


def clouds(db: Database, paths: Paths, count: int, dead: int = 1) -> dict[str, Any]:
    """``count`` clouds (the first ``dead`` with a two-hour-old heartbeat), a third of them busy."""
    now = int(time.time() * 1000)
    rng = random.Random(count)
    updates: dict[str, Any] = {}
    for i in range(count):
        cloud_id = f"cloud-{i:03d}"
        types = sorted(rng.sample(TYPES, rng.randint(1, 3)))
        slots = rng.choice((1, 1, 1, 2, 4))
        busy = min(slots, 1 if i % 3 == 0 else 0)
        beat: Any = now - 2 * 3600 * 1000 if i < dead else {".sv": "timestamp"}
        updates[paths.clouds(cloud_id)] = cloud_record(f"rain-{i:03d}", types, beat, busy, slots)
        for k in range(busy):
            job_id = db.new_id()
            updates[paths.inbox(cloud_id, job_id)] = {
                "id": job_id,
                "type": types[0],
                "name": f"user{rng.randint(1, 9999)}",
                "data": {"n": k},
                "timeout": 60,
                "submitted": now - rng.randint(100, 5000),
                "attempt": 1,
                "assigned": now - 50,
                "epoch": 7,
            }
    return updates


def history(db: Database, paths: Paths, count: int) -> dict[str, Any]:
    """``count`` finished jobs (mostly succeeded, some failed), oldest first."""
    now = int(time.time() * 1000)
    rng = random.Random(7)
    updates: dict[str, Any] = {}
    for i in range(count):
        job_id = db.new_id()
        job_type = TYPES[i % len(TYPES)]
        submitted = now - (count - i) * 2000
        ok = i % 11 != 5
        record: dict[str, Any] = {
            "id": job_id,
            "type": job_type,
            "name": f"user{rng.randint(1, 999)}",
            "data": {"user": rng.randint(1, 10_000), "plan": rng.choice(("free", "pro"))},
            "timeout": 30,
            "submitted": submitted,
            "assigned": submitted + 12,
            "started": submitted + 15,
            "finished": submitted + 15 + rng.randint(5, 900),
            "cloud": f"cloud-{rng.randint(1, 20):03d}",
            "attempts": 1,
            "state": "succeeded" if ok else "failed",
        }
        if ok:
            record["result"] = {"ok": True, "changed": rng.randint(0, 5)}
        else:
            record["error"] = {
                "kind": "error",
                "type": "PaymentDeclined",
                "message": "card 4242 declined: insufficient funds",
                "traceback": TRACEBACK,
            }
        updates[paths.jobs(job_id)] = record
    return updates


def failed_job(
    db: Database, paths: Paths, name: str, data: Any = None
) -> tuple[str, dict[str, Any]]:
    """A failed (dead-letter) job record with an error and remote traceback."""
    now = int(time.time() * 1000)
    job_id = db.new_id()
    record = {
        "id": job_id,
        "type": "billing",
        "name": name,
        "data": data if data is not None else {"invoice": 17},
        "timeout": 30,
        "submitted": now - 4000,
        "assigned": now - 3990,
        "started": now - 3985,
        "finished": now - 3000,
        "cloud": "cloud-004",
        "attempts": 3,
        "retries": 2,
        "state": "failed",
        "error": {
            "kind": "error",
            "type": "PaymentDeclined",
            "message": "card 4242 declined: insufficient funds",
            "traceback": TRACEBACK,
        },
        "outcomes": {
            "1": {"attempt": 1, "cloud": "cloud-002", "error": {"message": "gateway timeout"}},
            "2": {"attempt": 2, "cloud": "cloud-003", "error": {"message": "gateway timeout"}},
        },
    }
    return job_id, {paths.jobs(job_id): record}


def chain(db: Database, paths: Paths) -> tuple[str, dict[str, Any]]:
    """A three-step chain whose first two steps ran and whose third is queued."""
    now = int(time.time() * 1000)
    chain_id = db.new_id()
    updates: dict[str, Any] = {}
    steps = ("syncUser", "resizeImage", "sendEmail")
    for step, job_type in enumerate(steps):
        job_id = f"{chain_id}-{step}"
        state = "succeeded" if step < 2 else "queued"
        rec: dict[str, Any] = {
            "id": job_id,
            "type": job_type,
            "name": "user42",
            "data": {"user": 42},
            "timeout": 60,
            "submitted": now - 3000 + step * 500,
            "state": state,
            "chain": {"id": chain_id, "step": step},
        }
        if state == "succeeded":
            rec.update(
                {
                    "result": {"step": step},
                    "started": now - 2900 + step * 500,
                    "finished": now - 2700 + step * 500,
                    "cloud": "cloud-001",
                    "attempts": 1,
                }
            )
        updates[paths.jobs(job_id)] = rec
    return chain_id, updates


def stats(paths: Paths, minutes: int = 60) -> dict[str, Any]:
    """Per-minute analytics for the last ``minutes`` minutes, with a daily-looking rhythm."""
    now = time.time() * 1000
    rng = random.Random(3)
    updates: dict[str, Any] = {}
    for back in range(minutes):
        minute = minute_key(now / 1000 - back * 60)
        for index, job_type in enumerate(TYPES):
            base = (4 - index) * 90 * (1.2 + math.sin((back + index * 7) / 9.0))
            # The current minute has only run for part of its 60 seconds.
            part = (now % 60_000) / 60_000 if back == 0 else 1.0
            done = max(0, int((base + rng.randint(0, 40)) * part))
            failed = rng.choice((0, 0, 0, 1, 2, 5)) if index != 1 else rng.choice((0, 0, 1))
            latency: dict[str, int] = {}
            for _ in range(min(done, 60)):
                key = bucket_of(rng.lognormvariate(3.2 + index * 0.6, 0.8) / 1000)  # ms drawn
                latency[key] = latency.get(key, 0) + max(1, done // 60)
            record: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
            record.update(
                {
                    "submitted": done + failed,
                    "succeeded": done,
                    "failed": failed,
                    "latency": latency,
                    "queue": max(0, int(30 * math.sin(back / 5.0 + index) + rng.randint(0, 10))),
                }
            )
            updates[f"{paths.stats(minute)}/{job_type}"] = record
    return updates


def control_plane(db: Database, paths: Paths) -> dict[str, Any]:
    """Queued jobs, schedules, two dispatchers and a valid lease."""
    now = int(time.time() * 1000)
    updates: dict[str, Any] = {}
    for i in range(12):
        job_type = TYPES[i % 3]
        job_id = db.new_id()
        updates[paths.queue(job_type, job_id)] = {
            "id": job_id,
            "type": job_type,
            "name": f"batch{i}",
            "data": {"i": i},
            "timeout": 60,
            "submitted": now - i * 300,
            "attempt": 1,
        }
    updates[paths.schedules("nightly-report")] = {
        "cron": "0 3 * * *",
        "tz": "Europe/Paris",
        "misfire": "run_once",
        "paused": False,
        "job": {"type": "billing", "name": "report", "data": {"kind": "daily"}, "timeout": 600},
        "next": now + 5 * 3600 * 1000,
        "last": now - 19 * 3600 * 1000,
    }
    updates[paths.schedules("sync-all")] = {
        "every": 300,
        "tz": "UTC",
        "paused": False,
        "job": {"type": "syncUser", "name": "all", "data": None, "timeout": 120},
        "next": now + 140_000,
        "last": now - 160_000,
    }
    updates[paths.schedules("purge-images")] = {
        "every": 3600,
        "paused": True,
        "job": {"type": "resizeImage", "name": "purge", "timeout": 900},
        "next": now + 1_800_000,
        "last": now - 1_800_000,
    }
    updates[paths.lease] = {"owner": "disp-a1", "epoch": 7, "expires": now + 3600 * 1000}
    updates[paths.dispatchers("disp-a1")] = {
        "host": "ops-1",
        "pid": 4242,
        "started": now - 7_200_000,
        "heartbeat": {".sv": "timestamp"},
        "role": "leader",
    }
    updates[paths.dispatchers("disp-b2")] = {
        "host": "ops-2",
        "pid": 5151,
        "started": now - 3_600_000,
        "heartbeat": {".sv": "timestamp"},
        "role": "standby",
    }
    return updates
