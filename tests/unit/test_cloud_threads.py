"""A cloud's job threads are kept between jobs, one per job running at once, and end when idle."""

from __future__ import annotations

import threading

from atmosphere.worker.threads import JobThreads
from tests.support import wait_until


def _ran_on(threads: JobThreads) -> tuple[threading.Event, list[int]]:
    done = threading.Event()
    idents: list[int] = []

    def job() -> None:
        idents.append(threading.get_ident())
        done.set()

    threads.run(job)
    return done, idents


def test_jobs_one_after_another_run_on_the_same_thread() -> None:
    threads = JobThreads("t", keep=10.0)
    try:
        seen = []
        for _ in range(3):
            done, idents = _ran_on(threads)
            assert done.wait(5)
            seen += idents
            wait_until(lambda: threads._waiting == 1, 5, what="the thread waits again")
        assert len(set(seen)) == 1
    finally:
        threads.close()


def test_jobs_running_at_once_each_get_a_thread() -> None:
    threads = JobThreads("t", keep=10.0)
    release = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def job() -> None:
        with lock:
            started.append(threading.get_ident())
        release.wait(10)

    try:
        for _ in range(3):
            threads.run(job)
        wait_until(lambda: len(started) == 3, 5, what="three jobs running at once")
        assert len(set(started)) == 3
    finally:
        release.set()
        threads.close()


def test_a_job_that_raises_leaves_its_thread_serving() -> None:
    threads = JobThreads("t", keep=10.0)
    try:
        threads.run(_boom)
        wait_until(lambda: threads._waiting == 1, 5, what="the thread waits again")
        done, _ = _ran_on(threads)
        assert done.wait(5)
    finally:
        threads.close()


def test_an_idle_thread_ends_after_keep_and_close_ends_the_waiting_ones() -> None:
    idle = JobThreads("idle", keep=0.05)
    done, _ = _ran_on(idle)
    assert done.wait(5)
    wait_until(lambda: not _alive("idle-"), 5, what="the idle thread ended")
    kept = JobThreads("kept", keep=60.0)
    done, _ = _ran_on(kept)
    assert done.wait(5)
    wait_until(lambda: kept._waiting == 1, 5, what="the thread waits")
    kept.close()
    wait_until(lambda: not _alive("kept-"), 5, what="close ended it")


def test_a_job_handed_over_as_the_waiting_threads_keep_runs_out_still_runs() -> None:
    # keep so short that the hand-over often meets a thread whose wait just ran out
    threads = JobThreads("race", keep=0.0002)
    try:
        for _ in range(2000):
            done, _ = _ran_on(threads)
            assert done.wait(5), "a job handed to a thread that was leaving was lost"
    finally:
        threads.close()


def _boom() -> None:
    raise ZeroDivisionError("a handler's bug")


def _alive(prefix: str) -> bool:
    return any(t.name.startswith(prefix) for t in threading.enumerate())
