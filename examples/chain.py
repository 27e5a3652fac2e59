"""A chain: jobs run in sequence and data cascades from each to the next.

Run:  python examples/chain.py
(it starts `atmosphere dispatcher`, which starts the embedded database, and a cloud on tasks.py)
"""

from __future__ import annotations

from _local import local_atmosphere
from tasks import app, first, second

from atmosphere import chain


def main() -> None:
    # job2 runs with its own data merged with {"first": <result of job1>}.
    job1 = {"type": "first", "name": "job1", "data": {"param1": "initial message"}, "timeout": 30}
    job2 = {"type": "second", "data": {"param2": "initial message"}}
    handle = app.submit([job1, job2], lambda error, data: None)
    print("chain returned:", handle.get())

    # The same chain, Celery style.
    result = chain(first.s({"param1": "hi"}, name="job1"), second.s({"param2": "there"})).submit()
    print("chain(...) returned:", result.get())


if __name__ == "__main__":
    with local_atmosphere():
        try:
            main()
        finally:
            app.close()
