"""Celery habits: bare ``@app.task``, ``chain(a, b)``, a module-level ``@task`` included by the
app, ``async def`` handlers, ``get(timeout=...)`` that only stops waiting, exact JSON, and a
cloud running inside this process (``app.start_cloud()``, like Celery's test worker).

Run:  python examples/celery_style.py
(it starts `atmosphere dispatcher`, which starts the embedded database; the cloud runs in this
process)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from _local import local_atmosphere

from atmosphere import Atmosphere, ResponseTimeout, Ticket, chain, task

app = Atmosphere("celery-style")
release = threading.Event()


@app.task
def add(ticket: Ticket, data: Any) -> Any:
    return data["x"] + data["y"]


@app.task
def welcome(ticket: Ticket, data: Any) -> str:
    return f"welcome, {data['normalise']}"  # the previous step's result, by its type


@app.task(timeout=10)
async def fetch(ticket: Ticket, data: Any) -> Any:
    await asyncio.sleep(0.05)  # many of these await at once on the cloud's event loop
    return {"fetched": data}


@app.task(timeout=30)
def held(ticket: Ticket, data: Any) -> str:
    release.wait(20)
    return "done after all"


@app.task
def echo(ticket: Ticket, data: Any) -> Any:
    return data


# What a reusable module would hold (Celery's shared_task); the app includes it.
@task
def normalise(ticket: Ticket, data: Any) -> str:
    return str(data).strip().lower()


app.include(normalise)


def main() -> None:
    with app.start_cloud(concurrency=4):
        print("add returned:", add.delay({"x": 2, "y": 3}).get(timeout=30))
        print("chain returned:", chain(normalise.s(" Ada@Example.ORG "), welcome).submit().get())
        print("fetch returned:", [h.get(timeout=30) for h in [fetch.delay(i) for i in range(3)]])
        handle = held.submit(None, name="patience")
        try:
            handle.get(timeout=0.2)
        except ResponseTimeout:
            print("stopped waiting; the job has not timed out")
        release.set()
        print("then:", handle.get(timeout=30))
        print("exact:", echo.delay({"empty": {}, "list": [], "0": "a"}).get(timeout=30))


if __name__ == "__main__":
    with local_atmosphere(tasks=None):
        try:
            main()
        finally:
            app.close()
