"""The cloud's view of its inbox: a pure state machine driven by stream events."""

from __future__ import annotations

from typing import Any

from atmosphere.worker.inbox import FINISHED, HANDED_BACK, RUNNING, WAITING, Inbox


def job(job_id: str, attempt: int = 1) -> dict[str, Any]:
    return {"id": job_id, "type": "t", "name": job_id, "attempt": attempt}


def test_new_assignments_wait_in_order_and_start_oldest_first() -> None:
    inbox = Inbox()
    inbox.apply({"b": job("b"), "a": job("a")}, full=True, accepting=True)
    inbox.apply({"c": job("c")}, full=False, accepting=True)
    assert inbox.waiting == 3
    started = [inbox.start_next(), inbox.start_next(), inbox.start_next(), inbox.start_next()]
    assert [s.id if s else None for s in started] == ["b", "a", "c", None]
    assert inbox.status("a") == RUNNING


def test_a_finished_job_seen_again_in_an_old_snapshot_is_not_run_twice() -> None:
    inbox = Inbox()
    inbox.apply({"a": job("a")}, full=False, accepting=True)
    assert inbox.start_next() is not None
    inbox.finish("a")
    inbox.apply({"a": job("a")}, full=True, accepting=True)  # a resync taken before our write
    assert inbox.waiting == 0 and inbox.status("a") == FINISHED
    inbox.apply({"a": None}, full=False, accepting=True)  # our removal, seen at last
    assert inbox.status("a") is None
    inbox.apply({"a": job("a", attempt=2)}, full=False, accepting=True)  # a retry: new
    assert inbox.status("a") == WAITING


def test_a_waiting_job_taken_away_is_dropped_a_running_one_is_kept() -> None:
    inbox = Inbox()
    inbox.apply({"a": job("a"), "b": job("b")}, full=True, accepting=True)
    inbox.start_next()
    inbox.apply({}, full=True, accepting=True)  # the dispatcher requeued both
    assert inbox.status("a") == RUNNING and inbox.status("b") is None and inbox.waiting == 0


def test_garbage_is_reported_and_late_jobs_are_handed_back_while_draining() -> None:
    inbox = Inbox()
    applied = inbox.apply({"x": "junk", "y": {"type": 1}}, full=False, accepting=True)
    assert sorted(applied.garbage) == ["x", "y"] and inbox.waiting == 0
    applied = inbox.apply({"a": job("a")}, full=False, accepting=False)
    assert [s.id for s in applied.late] == ["a"] and inbox.status("a") == HANDED_BACK


def test_draining_hands_back_every_waiting_job() -> None:
    inbox = Inbox()
    inbox.apply({"a": job("a"), "b": job("b"), "c": job("c")}, full=True, accepting=True)
    inbox.start_next()
    assert [s.id for s in inbox.hand_back_waiting()] == ["b", "c"]
    assert inbox.waiting == 0 and inbox.status("b") == HANDED_BACK


def test_a_job_taken_away_while_running_is_forgotten_when_it_finishes() -> None:
    # Given a running job the dispatcher took back (the cloud was declared dead, say)
    inbox = Inbox()
    inbox.apply({"a": job("a")}, full=False, accepting=True)
    inbox.start_next()
    inbox.apply({}, full=True, accepting=True)
    # When it finishes: its removal was seen already, no later event will forget it
    inbox.finish("a")
    assert inbox.status("a") is None
    # So when the same job is assigned here again later, it runs (not ignored forever)
    inbox.apply({"a": job("a")}, full=False, accepting=True)
    assert inbox.status("a") == WAITING


def test_a_job_taken_away_then_reassigned_while_running_is_not_started_twice() -> None:
    inbox = Inbox()
    inbox.apply({"a": job("a")}, full=False, accepting=True)
    inbox.start_next()
    inbox.apply({}, full=True, accepting=True)  # taken back ...
    inbox.apply({"a": job("a")}, full=False, accepting=True)  # ... and given back, still running
    assert inbox.waiting == 0 and inbox.status("a") == RUNNING
    inbox.finish("a")
    assert inbox.status("a") == FINISHED  # our completion deletes the entry; that event forgets it
    inbox.apply({"a": None}, full=False, accepting=True)
    assert inbox.status("a") is None


def test_an_assignment_from_a_deposed_leader_is_handed_back_not_run() -> None:
    # Given a cloud that has seen an assignment from the leader of epoch 2
    inbox = Inbox()
    inbox.apply({"a": {**job("a"), "epoch": 2}}, full=False, accepting=True)
    assert inbox.highest_epoch == 2
    # When the deposed leader of epoch 1 writes a late assignment
    applied = inbox.apply({"b": {**job("b"), "epoch": 1}}, full=False, accepting=True)
    # Then it is handed back for the current leader to assign, never run here
    assert [s.id for s in applied.late] == ["b"]
    assert inbox.status("b") == HANDED_BACK
    assert [inbox.start_next(), inbox.start_next()][1] is None
    # and assignments of the current (or a newer) epoch still run
    inbox.apply({"c": {**job("c"), "epoch": 3}}, full=False, accepting=True)
    assert inbox.status("c") == WAITING and inbox.highest_epoch == 3


def test_a_finished_job_assigned_here_again_runs_though_its_removal_went_unseen() -> None:
    # Given a job this cloud finished, its stream down before the completion's removal showed
    inbox = Inbox()
    inbox.apply({"a": {**job("a"), "assigned": 1000, "epoch": 6}}, full=True, accepting=True)
    assert inbox.start_next() is not None
    inbox.finish("a")
    # When the stream resyncs after the job was retried and assigned here again: the snapshot
    # shows only the new assignment (the chaos run's recursion job that sat here for good)
    again = {**job("a", attempt=2), "assigned": 4000, "epoch": 6}
    inbox.apply({"a": again}, full=True, accepting=True)
    # Then it is a new assignment: it waits for a slot and runs
    assert inbox.status("a") == WAITING
    started = inbox.start_next()
    assert started is not None and started.attempt == 2
    # and the old one seen again (a stale snapshot of the first assignment) is still not rerun
    inbox.finish("a")
    inbox.apply({"a": again}, full=True, accepting=True)
    assert inbox.waiting == 0 and inbox.status("a") == FINISHED
