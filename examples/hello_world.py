"""Hello world: a remote procedure call, in both styles.

Run:  python examples/hello_world.py
(it starts `atmosphere dispatcher`, which starts the embedded database, and a cloud on tasks.py)
"""

from __future__ import annotations

import threading
from typing import Any

from _local import local_atmosphere
from tasks import app, hello


def main() -> None:
    # Celery style: submit, then wait on the handle.
    print("RPC returned:", hello.delay({"msg1": "Hello", "msg2": "World!"}).get())

    # The original style: submit(job, callback) with callback(error, data).
    done = threading.Event()

    def callback(error: Exception | None, data: Any) -> None:
        if error is not None:
            print("Error occurred executing function.", error)
        else:
            print("RPC completed and returned:", data)
        done.set()

    job = {
        "type": "remoteFunction",
        "name": "my first atmosphere job",
        "data": {"msg1": "Hello", "msg2": "World!"},
        "timeout": 30,
    }
    app.submit(job, callback)
    done.wait(35)


if __name__ == "__main__":
    with local_atmosphere():
        try:
            main()
        finally:
            app.close()
