"""encode_json: the fast JSON body of writes keeps the stdlib's (and Firebase's) refusals."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
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


def test_a_body_whose_nulls_are_deletions_is_encoded_once_by_orjson() -> None:
    # (the stdlib would escape the é: these are orjson's bytes, not a second encoding)
    value = {"live/inbox/c1/j1": None, "jobs/j1/name": "café", "n": [1.5, None]}
    assert encode_json(value) == orjson.dumps(value)


@pytest.mark.parametrize("bad", [{"a": None, "b": [{"c": math.nan}]}, (None, math.inf)])
def test_a_non_finite_number_beside_a_null_is_still_refused(bad: Any) -> None:
    with pytest.raises(DatabaseError, match="not JSON"):
        encode_json(bad)
