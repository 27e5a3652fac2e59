"""Unit tests of commit-to-event translation (atmosphere.localdb.events)."""

from __future__ import annotations

import json
from typing import Any

from atmosphere.localdb.events import Hub, Listener, sse_json
from atmosphere.rtdb import tree


class FakeSink:
    def __init__(self, backlog: int = 0) -> None:
        self.frames: list[bytes] = []
        self.backlog = backlog
        self.ended = False
        self.aborted = False

    def write(self, data: bytes) -> int:
        self.frames.append(data)
        return self.backlog

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True


def _events(sink: FakeSink) -> list[tuple[str, Any]]:
    out = []
    for f in sink.frames:
        name, data = f.decode().rstrip("\n").split("\n")
        out.append((name[7:], json.loads(data[6:])))
    return out


def _listen(hub: Hub, path: list[str], root: Any = None) -> FakeSink:
    sink = FakeSink()
    listener = Listener(path)
    listener.sink = sink
    hub.add("ns", listener, tree.get(root, path))
    return sink


def _write(hub: Hub, root: Any, path: list[str], value: Any) -> Any:
    after = tree.set_one(root, path, value)
    hub.publish("ns", path, None, root, after)
    return after


def test_initial_put_then_relative_puts() -> None:
    hub = Hub()
    sink = _listen(hub, ["l"])
    root = _write(hub, None, ["l", "a", "b"], 1)
    root = _write(hub, root, ["l"], {"x": 2})
    _write(hub, root, ["other"], 3)
    assert _events(sink) == [
        ("put", {"path": "/", "data": None}),
        ("put", {"path": "/a/b", "data": 1}),
        ("put", {"path": "/", "data": {"x": 2}}),
    ]


def test_writes_above_only_when_the_location_changes() -> None:
    hub = Hub()
    root = tree.set_one(None, ["a", "l"], 1)
    sink = _listen(hub, ["a", "l"], root)
    root = _write(hub, root, ["a", "other"], 2)
    root = _write(hub, root, ["a"], {"l": 5})
    assert _events(sink)[1:] == [("put", {"path": "/", "data": 5})]


def test_patch_events() -> None:
    hub = Hub()
    sink = _listen(hub, ["l"])
    entries = [(["a"], 1), (["b"], None)]
    after = tree.set_many(None, [(["l", *p], v) for p, v in entries])
    hub.publish("ns", ["l"], entries, None, after)
    deep = [(["x", "y"], 2)]
    after2 = tree.set_many(after, [(["l", *p], v) for p, v in deep])
    hub.publish("ns", ["l"], deep, after, after2)
    assert _events(sink)[1:] == [
        ("patch", {"path": "/", "data": {"a": 1}}),
        ("patch", {"path": "/", "data": {"x/y": 2}}),
    ]


def test_a_patch_reaches_only_the_listeners_its_entries_are_below() -> None:
    # Given listeners whose last keys match entries beside them, and one at the root
    hub = Hub()
    inbox, other, root = (
        _listen(hub, ["inbox", "c1"]),
        _listen(hub, ["queue", "c1"]),
        _listen(hub, []),
    )
    entries = [(["inbox", "c1", "j1"], 1), (["jobs", "c1", "j1"], 2)]
    # When one PATCH at the root writes below the first only
    hub.publish("ns", [], entries, None, tree.set_many(None, entries))
    # I expect it to see its own entry, the other nothing, the root both
    assert _events(inbox)[1:] == [("patch", {"path": "/", "data": {"j1": 1}})]
    assert _events(other)[1:] == []
    assert _events(root)[1:] == [
        ("patch", {"path": "/", "data": {"inbox/c1/j1": 1, "jobs/c1/j1": 2}})
    ]


def test_no_op_writes_send_nothing() -> None:
    hub = Hub()
    root = tree.set_one(None, ["l"], 1)
    sink = _listen(hub, ["l"], root)
    _write(hub, root, ["l"], 1)
    assert len(sink.frames) == 1


def test_a_listener_too_far_behind_is_aborted() -> None:
    hub = Hub(max_queued_bytes=100)
    sink = _listen(hub, ["l"])
    sink.backlog = 1000
    _write(hub, None, ["l"], "x")
    assert sink.aborted
    assert hub.dropped == 1
    assert hub.by_ns.get("ns") is None


def test_queue_mode_and_cancel() -> None:
    listener = Listener(["l"])
    listener.push(b"a")
    listener.push(b"b")
    assert listener.take() == b"ab"
    listener.close("Permission denied")
    assert listener.closed
    assert listener.cancel == b'event: cancel\ndata: "Permission denied"\n\n'


def test_sse_json_is_ascii() -> None:
    assert sse_json({"s": "café"}) == b'{"s":"caf\\u00e9"}'
    assert sse_json([1, "a"]) == b'[1,"a"]'


def test_events_from_an_in_place_write_and_its_before_view() -> None:
    hub = Hub()
    root = {"a": {"l": {"x": 1}, "other": 2}}
    sink = _listen(hub, ["a", "l"], root)
    below = _listen(hub, ["a", "l", "x"], root)
    old = [(("a",), tree.get(root, ["a"]))]
    after = tree.apply_in_place(root, [(["a"], {"l": {"x": 5}, "other": 2})])
    hub.publish("ns", ["a"], None, tree.Before(after, old), after)
    assert _events(sink)[1:] == [("put", {"path": "/", "data": {"x": 5}})]
    assert _events(below)[1:] == [("put", {"path": "/", "data": 5})]
    unchanged = [(("a", "other"), tree.get(after, ["a", "other"]))]
    after2 = tree.apply_in_place(after, [(["a", "other"], 2)])
    hub.publish("ns", ["a", "other"], None, tree.Before(after2, unchanged), after2)
    assert len(sink.frames) == 2  # nothing new for a write beside it that changed nothing


def test_a_failing_listener_is_cut_off_and_the_others_still_get_the_commit() -> None:
    class BrokenSink(FakeSink):
        def write(self, data: bytes) -> int:
            if self.frames:  # the initial put goes through, then the connection breaks
                raise RuntimeError("broken")
            return super().write(data)

    hub = Hub()
    broken = BrokenSink()
    listener = Listener(["l"])
    listener.sink = broken
    hub.add("ns", listener, None)
    sinks = [_listen(hub, ["l"]) for _ in range(3)]
    _write(hub, None, ["l"], 1)
    for sink in sinks:
        assert _events(sink)[-1] == ("put", {"path": "/", "data": 1})
    # Cut off, so that it reconnects and resyncs, rather than silently missing the commit.
    assert broken.aborted
    assert listener.closed
    assert listener not in hub.by_ns["ns"]


def test_a_commit_reaches_the_most_specific_listeners_first() -> None:
    # Each send wakes the process that reads it: the small event someone waits on (a cloud's
    # inbox, a maker's replies) goes before the big one of a listener high up (live/), and an
    # event that only removes something after all of those.
    sent: list[str] = []

    class Recorder(FakeSink):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def write(self, data: bytes) -> int:
            sent.append(self.name)
            return super().write(data)

    hub = Hub()
    paths = {"live": ["a", "live"], "replies": ["a", "replies", "m"], "root": []}
    paths["inbox"] = ["a", "live", "inbox", "c"]
    for name in ("live", "root", "inbox", "replies"):  # registered in no particular order
        listener = Listener(paths[name])
        listener.sink = Recorder(name)
        hub.add("ns", listener, None)
    entries = [(["live", "inbox", "c", "j"], None), (["replies", "m", "j"], {"ok": True})]
    entries.append((["live", "outcomes", "j"], {"ok": True}))
    before = tree.set_one(None, ["a", "live", "inbox", "c", "j"], 1)
    for _ in range(2):  # and again after a listener comes and goes
        sent.clear()
        after = tree.update(before, ["a"], entries)
        hub.publish("ns", ["a"], entries, before, after)
        # The inbox's event only says its entry went (a cloud's completed job): last.
        assert sent == ["replies", "live", "root", "inbox"]
        gone = Listener(["a", "x"])
        hub.add("ns", gone, None)
        hub.remove("ns", gone)
