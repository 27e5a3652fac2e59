"""Demo tasks: what two clouds run during ``atmosphere demo``.

Run a cloud on them yourself with ``atmosphere cloud atmosphere.demo.tasks``.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from atmosphere import Atmosphere, Retry, Ticket

cloud = Atmosphere("demo")


@cloud.task("resizeImage", timeout=30)
def resize_image(ticket: Ticket, data: Any) -> dict[str, Any]:
    """Pretend to resize an image: a little CPU work, then the new size."""
    width, height = int(data.get("width", 640)), int(data.get("height", 480))
    digest = hashlib.sha256(f"{ticket['id']}{width}{height}".encode()).hexdigest()
    time.sleep(random.uniform(0.01, 0.08))
    return {"width": width // 2, "height": height // 2, "etag": digest[:12]}


@cloud.task("syncUser", timeout=30)
def sync_user(ticket: Ticket, data: Any) -> dict[str, Any]:
    """Pretend to sync a user record with a remote system."""
    time.sleep(random.uniform(0.02, 0.15))
    return {"user": ticket["name"], "synced": True}


@cloud.task("sendEmail", timeout=30, retries=3, retry_backoff=0.5)
def send_email(ticket: Ticket, data: Any) -> str:
    """A flaky mail server: fails now and then, so retries show up in the station."""
    if random.random() < 0.25:
        raise Retry(delay=0.5, message="mail server busy")
    if random.random() < 0.05:
        raise ConnectionError("mail server refused the connection")
    return f"sent to {data.get('to', 'someone@example.com') if isinstance(data, dict) else data}"


@cloud.task("report", timeout=60)
def report(ticket: Ticket, data: Any) -> dict[str, Any]:
    """Recursion: a report asks syncUser for two users and waits (clouds are makers too)."""
    users = data.get("users", ["ada", "grace"]) if isinstance(data, dict) else ["ada"]
    handles = [sync_user.submit(name=u, data={}) for u in users]
    return {"users": [h.get(timeout=30) for h in handles]}
