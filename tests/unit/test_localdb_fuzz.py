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
