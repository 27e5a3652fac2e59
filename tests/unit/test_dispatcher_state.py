"""The dispatcher's view of live/, fed with stream events, and its write batcher."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmosphere.db.base import increment
from atmosphere.scheduler import state as state_module
from atmosphere.scheduler.batcher import WriteBatch, _Folder, _overlapping, _prefixes
from atmosphere.scheduler.state import LiveState
from atmosphere.testing import MemoryDatabase

JOB = {"id": "j1", "type": "t", "name": "n", "timeout": 5}


def test_initial_snapshot_builds_every_section() -> None:
    s = LiveState()
    s.apply(
        "put",
        "/",
        {
            "queue": {"t": {"j1": JOB}},
            "inbox": {"c1": {"j2": {**JOB, "id": "j2"}}},
            "clouds": {"c1": {"types": {"t": True}, "slots": 2, "heartbeat": 5}},
            "outcomes": {"j3": {"ok": True, "attempt": 1, "cloud": "c1"}},
            "delayed": {"j4": {**JOB, "id": "j4", "eta": 99}},
            "chains": {"k": {"steps": [{"type": "t"}], "timeout": 3}},
        },
    )
    assert list(s.queue["t"]) == ["j1"]
    assert s.held("c1") == 1
    assert s.cloud("c1") is not None and s.cloud("c1").slots == 2  # type: ignore[union-attr]
    assert s.outcome("j3") is not None
    assert s.delayed[("j4",)].eta == 0.099  # seconds, parsed from the stored ms
    assert s.chain("k") is not None
    assert s.locate("j4") == "delayed" and s.locate("j2") == "inbox" and s.locate("j1") == "queue"


def test_put_patch_and_deletes_report_changes() -> None:
    s = LiveState()
    s.apply("put", "/", None)
    changes = s.apply("put", "/queue/t/j1", JOB)
    assert [(c.section, c.key) for c in changes] == [("queue", ("t", "j1"))]
    changes = s.apply("patch", "/", {"queue/t/j1": None, "inbox/c/j1": JOB})
    assert {(c.section, c.key) for c in changes} == {("queue", ("t", "j1")), ("inbox", ("c", "j1"))}
    assert "t" not in s.queue and s.held("c") == 1
    s.apply("put", "/inbox/c", None)
    assert s.held("c") == 0
    assert s.apply("put", "/inbox/c", None) == []


def test_a_field_write_reparses_its_record() -> None:
    s = LiveState()
    s.apply("put", "/clouds/c1", {"types": {"t": True}, "heartbeat": 1})
    (change,) = s.apply("put", "/clouds/c1/heartbeat", 2)
    assert change.old.heartbeat == 0.001 and change.new.heartbeat == 0.002


def test_a_write_that_changes_nothing_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stream shows the dispatcher each of its own writes again: that must cost a
    # comparison, not a parse of every record it touched.
    s = LiveState()
    s.apply("patch", "/", {"queue/t/j1": JOB, "outcomes/j3": {"ok": True, "attempt": 1}})
    parsed: list[object] = []
    real = state_module._PARSERS["queue"]

    def parse(key: tuple[str, ...], raw: Any) -> Any:
        parsed.append(key)
        return real(key, raw)

    monkeypatch.setitem(state_module._PARSERS, "queue", parse)
    assert s.apply("patch", "/", {"queue/t/j1": dict(JOB), "queue/t/j2": None}) == []
    assert s.apply("put", "/queue/t/j1/name", "n") == []
    assert parsed == []
    changed = s.apply("put", "/queue/t/j1/name", "other")
    assert parsed == [("t", "j1")] and changed[0].new.name == "other"


def test_a_whole_snapshot_only_reports_what_changed() -> None:
    s = LiveState()
    tree = {"queue": {"t": {"j1": JOB, "j2": {**JOB, "id": "j2"}}}}
    s.apply("put", "/", tree)
    again = {"queue": {"t": {"j1": dict(JOB), "j3": {**JOB, "id": "j3"}}}}
    changes = s.apply("put", "/", again)
    assert {c.key for c in changes} == {("t", "j2"), ("t", "j3")}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/queue", "not an object"),
        ("/queue/t", 17),
        ("/queue/t/j9", [1, 2]),
        ("/clouds/c9", {"types": "x"}),
        ("/outcomes/j9", {"ok": "yes"}),
        ("/chains/k9", {"steps": []}),
        ("/nonsense/x", {"a": 1}),
        ("/", {"queue": 5, "clouds": {"c": None}}),
    ],
)
def test_garbage_is_logged_once_and_skipped(
    path: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    s = LiveState()
    s.apply("put", "/queue/t/j1", JOB)
    with caplog.at_level(logging.WARNING):
        s.apply("put", path, value)
        s.apply("put", path, value)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) <= 1
    assert all(k != ("t", "j9") for k in s.records["queue"])
    assert "c9" not in {k[0] for k in s.clouds}


def test_patch_with_garbage_data_is_skipped() -> None:
    s = LiveState()
    assert s.apply("patch", "/queue", "zzz") == []


def test_batch_folds_and_replaces_overlapping_paths() -> None:
    b = WriteBatch()
    b.set("a/b", {"x": 1})
    b.set("a/b/y", 2)
    b.set("a/c/d", 1)
    b.set("a/c", None)
    b.set("s/m/t/n", increment(1))
    assert b.take() == {"a/b": {"x": 1, "y": 2}, "a/c": None, "s/m/t/n": {".sv": {"increment": 1}}}
    b.set("a/b", None)
    b.set("a/b/c", 3)
    assert b.take() == {"a/b": {"c": 3}}


def test_batch_flushes_one_atomic_update() -> None:
    db = MemoryDatabase()
    b = WriteBatch()
    b.update({"r/x/a": 1, "r/x/b": 2, "r/y": "z"})
    assert b.flush(db) == []  # nothing refused
    assert b.flush(db) == []
    assert db.writes == 1 and b.updates == 1 and b.paths == 3
    assert db.get("r") == {"x": {"a": 1, "b": 2}, "y": "z"}


_WRITES = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["a", "b", "a-", "ab"]), min_size=1, max_size=3).map("/".join),
        st.one_of(st.none(), st.integers(0, 3), st.just({"x": 1})),
    ),
    max_size=8,
)


@given(st.lists(_WRITES, max_size=4))
@settings(deadline=None)  # a loaded machine is no failure
def test_a_batch_folds_overlapping_writes_as_applying_them_in_order_does(
    decisions: list[list[tuple[str, object]]],
) -> None:
    """The batch only logs writes and folds them when their paths overlap: the same result as
    folding each one as it comes."""
    b = WriteBatch()
    reference = _Folder()
    for writes in decisions:
        b.update(dict(writes))
        for path, value in dict(writes).items():
            reference.put(path, value)
    assert set(reference.values) <= set(b.keys())
    assert b.take() == reference.values and not b


@given(st.sets(st.text(alphabet="ab-/", min_size=1, max_size=6), max_size=8))
def test_overlapping_is_every_path_below_or_above_another(paths: set[str]) -> None:
    def below(inner: str, outer: str) -> bool:
        return inner.split("/")[: len(outer.split("/"))] == outer.split("/") and inner != outer

    expected = {p for p in paths if any(below(p, q) or below(q, p) for q in paths)}
    assert _overlapping(paths) == expected


@given(st.text(alphabet="ab/", max_size=8))
def test_prefixes_are_every_proper_slash_prefix(path: str) -> None:
    parts = path.split("/")
    assert _prefixes(path) == ["/".join(parts[:n]) for n in range(1, len(parts))]


_CHAIN = {
    "name": "c",
    "steps": [{"type": "a"}, {"type": "b", "data_json": "[1]"}],
    "timeout": 20,
    "step": 0,
    "reply_to": "m1",
}
_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.floats(-1, 3), st.text(max_size=2)
)


@given(st.lists(st.tuples(st.sampled_from(["step", "replied"]), _FIELD_VALUES), max_size=4))
@settings(deadline=None)  # a loaded machine is no failure
def test_a_chain_field_written_alone_leaves_the_record_a_fresh_parse_would_give(
    writes: list[tuple[str, object]],
) -> None:
    """``step`` and ``replied`` writes update the chain record held, without parsing it again."""
    s = LiveState()
    s.apply("put", "/chains/ch", copy.deepcopy(_CHAIN))  # the view writes into what it holds
    for field, value in writes:
        s.apply("patch", "/", {f"chains/ch/{field}": value})
    fresh = LiveState()
    fresh.apply("put", "/", s.raw)
    assert s.chains == fresh.chains


def test_settling_a_chain_step_does_not_parse_the_chain_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[tuple[str, ...]] = []
    parse_chain = state_module._PARSERS["chains"]

    def counted(key: tuple[str, ...], raw: Any) -> Any:
        parsed.append(key)
        return parse_chain(key, raw)

    monkeypatch.setitem(state_module._PARSERS, "chains", counted)
    s = LiveState()
    s.apply("put", "/chains/ch", copy.deepcopy(_CHAIN))  # the view writes into what it holds
    s.apply("patch", "/", {"chains/ch/step": 1, "chains/ch/replied": True})
    assert parsed == [("ch",)] and s.chains[("ch",)].step == 1 and s.chains[("ch",)].replied
