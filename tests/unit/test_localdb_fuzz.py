"""Random requests never make the core answer 500 or store an invalid tree."""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atmosphere.localdb.service import Config, LocalDb, Response
from atmosphere.localdb.store import Store

segments = st.sampled_from(["a", "b", "0", "1", ".priority", "%20", "a.b", "$x", "", "é"])
paths = st.lists(segments, max_size=4).map(lambda s: ("/" + "/".join(s) + ".json").encode())
params = st.lists(
    st.sampled_from(
        [
            "print=silent",
            "print=pretty",
            "shallow=true",
            "format=export",
            "orderBy=%22$key%22",
            "orderBy=%22a%22",
            "orderBy=%22$value%22",
            "limitToFirst=1",
            "limitToLast=2",
            "startAt=1",
            "endAt=%22b%22",
            "equalTo=true",
            "timeout=1s",
            "auth_variable_override=null",
            "x-http-method-override=DELETE",
        ]
    ),
    max_size=3,
).map(lambda ps: "&".join(ps).encode())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["a", "b", "1", ".sv", ".value", ".priority", "c/d"]), inner, max_size=3
        ),
    ),
    max_leaves=8,
)
bodies = st.one_of(
    json_values.map(lambda v: __import__("json").dumps(v).encode()),
    st.binary(max_size=20),
)
headers = st.sampled_from(
    [
        {b"authorization": b"Bearer owner"},
        {b"authorization": b"Bearer owner", b"if-match": b"null_etag"},
        {b"authorization": b"Bearer owner", b"x-firebase-etag": b"true"},
        {b"authorization": b"Bearer owner", b"if-none-match": b"x"},
        {},
    ]
)
methods = st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD"])


def _valid(node: Any) -> bool:
    if isinstance(node, dict):
        return bool(node) and all(v is not None and _valid(v) for v in node.values())
    return node is not None and not isinstance(node, list)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(methods, paths, params, headers, bodies), min_size=1, max_size=6))
def test_no_500_and_the_tree_stays_valid(requests: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        store.open()
        db = LocalDb(store, Config(default_rules='{"rules": {"a": {".read": true}}}'))
        for method, path, query, hdrs, body in requests:
            answer = db.handle(method, path, query + b"&ns=f", hdrs, body)
            if isinstance(answer, Response):
                assert answer.status < 500, (method, path, query, body, answer)
            root = store.namespace("f").root
            assert root is None or _valid(root)
        store.close()


class _MirrorSink:
    """Applies the frames it receives to a local copy, as a stream client would."""

    def __init__(self) -> None:
        self.mirror: Any = None

    def write(self, data: bytes) -> int:
        import json

        name, line = data.decode().rstrip("\n").split("\n")
        event, payload = name[len("event: ") :], json.loads(line[len("data: ") :])
        if event == "put":
            self._set(payload["path"], payload["data"])
        elif event == "patch":
            for key, value in payload["data"].items():
                self._set(payload["path"].rstrip("/") + "/" + key, value)
        return 0

    def _set(self, path: str, value: Any) -> None:
        from atmosphere.rtdb import tree

        segments = [s for s in path.split("/") if s]
        self.mirror = tree.set_one(self.mirror, segments, _plain(value))

    def end(self) -> None:
        """Not needed."""

    def abort(self) -> None:
        """Not needed."""


def _plain(value: Any) -> Any:
    """Rendered JSON back to the tree's shape: arrays as objects, nulls and empties gone."""
    if isinstance(value, list):
        value = {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        out = {k: _plain(v) for k, v in value.items()}
        out = {k: v for k, v in out.items() if v is not None}
        return out or None
    return value


listen_paths = st.sampled_from([[], ["a"], ["a", "b"], ["1"]])
valid_paths = st.lists(st.sampled_from(["a", "b", "1"]), max_size=3).map(
    lambda s: ("/" + "/".join(s) + ".json").encode()
)
valid_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x"])),
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "1", "0"]), inner, max_size=3),
    max_leaves=6,
)
patch_bodies = st.dictionaries(
    st.sampled_from(["a", "b", "1", "a/b", "b/a/1", "1/a"]), valid_values, max_size=3
)
writes = st.one_of(
    st.tuples(st.just("PUT"), valid_paths, valid_values),
    st.tuples(st.just("POST"), valid_paths, valid_values),
    st.tuples(st.just("DELETE"), valid_paths, st.none()),
    st.tuples(st.just("PATCH"), valid_paths, patch_bodies),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(listen_paths, st.lists(writes, min_size=1, max_size=8))
def test_a_listener_mirror_always_equals_the_tree(where: list[str], requests: list[Any]) -> None:
    import json

    from atmosphere.localdb.access import ADMIN
    from atmosphere.localdb.messages import Request, StreamRequest
    from atmosphere.rtdb import tree

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        store.open()
        db = LocalDb(store, Config())
        ns = db.namespace("f")
        sink = _MirrorSink()
        db.subscribe(StreamRequest(Request("GET", where, {}, {}, ADMIN, ns)), sink=sink)
        owner = {b"authorization": b"Bearer owner"}
        for method, path, value in requests:
            body = b"" if value is None and method == "DELETE" else json.dumps(value).encode()
            answer = db.handle(method, path, b"ns=f", owner, body)
            assert isinstance(answer, Response) and answer.status < 500
            expected = _plain(tree.render(tree.get(ns.root, where)))
            assert sink.mirror == expected, (method, path, value)
        store.close()
