"""Fire-and-forget: submit with no callback; nothing waits, errors are only logged and recorded.

Run:  python examples/fire_and_forget.py
(it starts `atmosphere dispatcher`, which starts the embedded database, and a cloud on tasks.py)
"""

from __future__ import annotations

import time

from _local import local_atmosphere
from tasks import app, audit


def main() -> None:
    # The original form: callback=None (no reply is tracked, none is written).
    first = app.submit({"type": "audit", "name": "login", "data": {"user": "ada"}})
    # Celery style.
    second = audit.submit(name="logout", data={"user": "ada"}, forget=True)
    print("submitted", first.id, "and", second.id, "without waiting")

    # Nobody is answered, but every job's outcome is recorded in the database.
    for handle in (first, second):
        path = f"{app.settings.root}/jobs/{handle.id}/state"
        deadline = time.monotonic() + 30
        while app.database.get(path) != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"job {handle.id}: {app.database.get(path)}")


if __name__ == "__main__":
    with local_atmosphere():
        try:
            main()
        finally:
            app.close()
