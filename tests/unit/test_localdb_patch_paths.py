"""A multi-path PATCH takes the fast path (admin: in place) or the general one (rules: copying);
both must leave the same tree, the same ETags and the same stream events."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from atmosphere.localdb.service import LocalDb, Response, StreamRequest
from atmosphere.localdb.store import Store
from atmosphere.rtdb import tree

ADMIN = {b"authorization": b"Bearer owner"}
ANYONE: dict[bytes, bytes] = {}  # judged by the rules below, which let everyone write
OPEN_RULES = b'{"rules": {".read": true, ".write": true}}'

keys = st.sampled_from(["a", "b", "c", "0", "1"])
leaves = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["x", "", "y"]),
    st.booleans(),
    st.just({".sv": "timestamp"}),
    st.just({".sv": {"increment": 2}}),
    st.just({".value": "v", ".priority": 1}),  # a primitive with a priority: no children
)
values = st.recursive(
    st.one_of(st.none(), leaves),
    lambda inner: st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
trees = st.dictionaries(keys, values, max_size=4)
paths = st.lists(keys, min_size=1, max_size=3)
patch_keys = st.one_of(paths.map("/".join), paths.map(lambda p: "/".join([*p, ".priority"])))
patches = st.dictionaries(patch_keys, values, min_size=1, max_size=5)


class Sink:
    """A stream connection that keeps what it was sent."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.frames.append(data)
        return 0

    def end(self) -> None:
        """Nothing to close."""

    def abort(self) -> None:
        """Nothing to drop."""


@contextmanager
def server() -> Iterator[LocalDb]:
    with tempfile.TemporaryDirectory() as data_dir:
        store = Store(data_dir)
        store.open()
        try:
            db = LocalDb(store)
            put = db.handle("PUT", b"/.settings/rules.json", b"", ADMIN, OPEN_RULES)
            assert isinstance(put, Response) and put.status == 200
            yield db
        finally:
            store.close()


def request(db: LocalDb, method: str, path: str, headers: dict[bytes, bytes], body: Any) -> Any:
    answer = db.handle(method, path.encode(), b"", headers, json.dumps(body).encode())
    assert isinstance(answer, Response)
    return answer.status, answer.body


def listen(db: LocalDb, path: str) -> Sink:
    stream = db.handle(
        "GET", f"/{path}.json".encode(), b"", {**ADMIN, b"accept": b"text/event-stream"}, b""
    )
    assert isinstance(stream, StreamRequest)
    sink = Sink()
    db.subscribe(stream, sink=sink)
    return sink


def outcome(
    headers: dict[bytes, bytes], root: Any, base: str, patch: Any, listened: list[str]
) -> tuple[Any, ...]:
    """Everything observable after one PATCH from a caller with ``headers``."""
    with server() as db:
        db.writer.clock = lambda: 1_700_000_000_000  # the same server time in both runs
        assert request(db, "PUT", "/.json", ADMIN, root)[0] == 200
        sinks = [listen(db, p) for p in listened]
        answer = request(db, "PATCH", f"/{base}.json", headers, patch)
        stored = db.store.namespace(db.config.default_namespace).root
        etags = [
            tree.etag(tree.get(stored, [k for k in p.split("/") if k]))
            for p in [*listened, *(f"{base}/{k}".strip("/") for k in patch)]
        ]
        return answer, stored, tree.etag(stored), etags, [s.frames for s in sinks]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trees,
    st.sampled_from(["", "a", "b/c"]),
    patches,
    st.lists(st.sampled_from(["", "a", "b", "a/b", "b/c", "b/c/a", "c/0"]), max_size=4),
)
@example({"a": {".value": "v", ".priority": 1}}, "", {"a/b": 1}, [""])  # below a primitive
@example({"a": {"b": 1, ".priority": 2}}, "", {"a/.priority": None, "a/c": 2}, ["a"])
def test_fast_patch_equals_the_general_path(
    root: Any, base: str, patch: Any, listened: list[str]
) -> None:
    fast = outcome(ADMIN, root, base, patch, listened)
    general = outcome(ANYONE, root, base, patch, listened)
    assert fast == general


def test_one_event_per_commit_per_listener() -> None:
    with server() as db:
        sink = listen(db, "live")
        before = len(sink.frames)
        patch = {f"live/queue/t/j{i}": {"type": "t", "n": i} for i in range(50)}
        patch.update({f"jobs/j{i}": {"state": "queued"} for i in range(50)})
        assert request(db, "PATCH", "/.json", ADMIN, patch)[0] == 200
        assert len(sink.frames) == before + 1
        assert sink.frames[-1].startswith(b"event: patch\ndata: ")
        data = json.loads(sink.frames[-1].split(b"data: ", 1)[1])
        assert data["path"] == "/" and len(data["data"]) == 50  # only what it listens to
