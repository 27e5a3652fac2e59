"""Unit tests of bench.trace's timeline arithmetic (synthetic marks; the smoke test runs it)."""

from __future__ import annotations

from pathlib import Path

from bench.trace import SEGMENTS, Line, Segment, read_lines, report, rpc_windows, split


def test_split_measures_each_segment_from_the_previous_segments_end() -> None:
    segments = (Segment("a", "server", "x"), Segment("b", "cloud", "y", "job"))
    window = [
        Line(100, "maker", "MainThread", "RPC< 0"),
        Line(150, "server", "MainThread", "z"),  # no segment's mark
        Line(160, "server", "MainThread", "x<"),
        Line(170, "cloud", "stream", "y<"),  # the right label on the wrong thread
        Line(200, "cloud", "cloud-job-1", "y<"),
        Line(210, "maker", "MainThread", "RPC> 0"),
    ]
    assert split(window, segments) == [60, 40]


def test_a_window_missing_a_mark_is_left_out() -> None:
    window = [Line(0, "maker", "MainThread", "RPC< 0"), Line(5, "maker", "MainThread", "RPC> 0")]
    assert split(window) is None
    assert "no RPC had every mark (1 traced)" in report(window)


def test_rpc_windows_pair_each_start_with_its_own_end() -> None:
    lines = [
        Line(0, "maker", "MainThread", "RPC< 0"),
        Line(1, "server", "MainThread", "x"),
        Line(2, "maker", "MainThread", "RPC> 0"),
        Line(3, "maker", "MainThread", "RPC< 1"),
        Line(4, "maker", "MainThread", "RPC> 1"),
    ]
    assert [[line.ns for line in w] for w in rpc_windows(lines)] == [[0, 1, 2], [3, 4]]


def test_read_lines_merges_the_processes_by_time_and_names_their_roles(tmp_path: Path) -> None:
    (tmp_path / "1.log").write_text("10 1 MainThread started db --port\n30 1 MainThread x<\n")
    (tmp_path / "2.log").write_text("20 2 MainThread started cloud bench.tasks\n40 2 t y z<\n")
    (tmp_path / "3.log").write_text("5 3 MainThread started --rpcs 20\n")
    got = [(line.ns, line.role, line.thread, line.label) for line in read_lines(str(tmp_path))]
    assert got == [
        (5, "maker", "MainThread", "started --rpcs 20"),
        (10, "server", "MainThread", "started db --port"),
        (20, "cloud", "MainThread", "started cloud bench.tasks"),
        (30, "server", "MainThread", "x<"),
        (40, "cloud", "t", "y z<"),
    ]


def test_the_segments_walk_the_whole_path_and_end_in_the_maker() -> None:
    assert SEGMENTS[0].role == "maker" and SEGMENTS[-1].label == "RPC>"
    assert {s.role for s in SEGMENTS} == {"maker", "server", "dispatcher", "cloud"}
