"""Recursion: a job that submits jobs and waits for them (clouds are makers too).

One exclusive cloud handles both types: while ``report`` waits, it lends its slot so the
``syncUser`` jobs it submitted can run on the same cloud; nothing deadlocks.

Run:  python examples/recursion.py
(it starts `atmosphere dispatcher`, which starts the embedded database, and a cloud on tasks.py)
"""

from __future__ import annotations

from _local import local_atmosphere
from tasks import app, report, report_original


def main() -> None:
    users = {"users": ["ada", "grace", "linus"]}
    print("report returned:", report.delay(users).get())
    # The original style: the handler submits with callbacks and returns LATER.
    print("reportOriginal returned:", report_original.delay(users).get())


if __name__ == "__main__":
    with local_atmosphere():
        try:
            main()
        finally:
            app.close()
