"""encode_json: the fast JSON body of writes keeps the stdlib's (and Firebase's) refusals."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from atmosphere.db.client import encode_json
from atmosphere.errors import DatabaseError


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": None}},
        "nullable",
        2**70,
        {1: "int keys become strings"},
        "café ☁",
    ],
)
def test_same_json_as_the_stdlib(value: Any) -> None:
    assert json.loads(encode_json(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("bad", [math.nan, [1, math.inf], {"x": -math.inf}, object(), {1, 2}])
def test_non_json_is_refused(bad: Any) -> None:
    with pytest.raises(DatabaseError, match="not JSON"):
        encode_json(bad)
