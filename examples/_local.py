"""Start a local Atmosphere for an example: ``atmosphere dispatcher`` (which starts the embedded
database) and one ``atmosphere cloud tasks`` (none with ``cloud=None``: the example runs its
cloud in its own process); stop both afterwards.

Set ATMOSPHERE_EXAMPLES_EXTERNAL=1 to use a dispatcher and clouds you started yourself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def local_atmosphere(tasks: str | None = "tasks") -> Iterator[None]:
    """Run the example inside a dispatcher + one cloud on ``tasks`` started for it."""
    if os.environ.get("ATMOSPHERE_EXAMPLES_EXTERNAL"):
        yield
        return
    log = tempfile.NamedTemporaryFile("w+", prefix="atmosphere-example-", suffix=".log")
    atmosphere = [sys.executable, "-m", "atmosphere"]
    procs = [
        subprocess.Popen([*atmosphere, "dispatcher", "--no-station"], stdout=log, stderr=log),
    ]
    if tasks is not None:
        cloud = [*atmosphere, "cloud", tasks]
        procs.append(subprocess.Popen(cloud, cwd=HERE, stdout=log, stderr=log))
    try:
        _wait_for(log.name, "up: types" if tasks is not None else "running on root", procs)
        yield
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _wait_for(log_path: str, line: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while line not in Path(log_path).read_text():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            sys.exit("the local Atmosphere did not start:\n" + Path(log_path).read_text())
        time.sleep(0.1)
