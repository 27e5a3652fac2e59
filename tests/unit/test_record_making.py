"""Records decoded on the hot path are made without their frozen ``__init__`` (jobs._made): they
must be exactly what the constructor makes, every field present, and stay frozen."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmosphere.db.base import SERVER_TIMESTAMP
from atmosphere.jobs import ChainRef, Finish, JobSpec, Outcome
from atmosphere.scheduler.overlay import resolve


def rebuilt(record: Any) -> Any:
    """The same record made through its constructor, field by field."""
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return type(record)(**fields)


def hashed(record: Any) -> int | None:
    """The record's hash; None for one holding a list or a dict (it has none)."""
    try:
        return hash(record)
    except TypeError:
        return None


def assert_made_whole(record: Any) -> None:
    assert vars(record).keys() == {f.name for f in dataclasses.fields(record)}
    assert record == rebuilt(record)
    assert hashed(record) == hashed(rebuilt(record))
    assert repr(record) == repr(rebuilt(record))


specs = st.builds(
    JobSpec,
    id=st.text(min_size=1, max_size=8),
    type=st.text(min_size=1, max_size=8),
    name=st.text(min_size=1, max_size=8),
    data=st.none() | st.integers() | st.text(max_size=5),
    timeout=st.floats(min_value=0.5, max_value=1e4),
    submitted=st.none() | st.integers(1, 2_000_000_000).map(float),
    reply_to=st.none() | st.text(min_size=1, max_size=8),
    retries=st.integers(0, 5),
    attempt=st.integers(1, 5),
    chain=st.none()
    | st.builds(ChainRef, id=st.text(min_size=1, max_size=5), step=st.integers(0, 4)),
    deaths=st.integers(0, 3),
)


@given(specs)
def test_a_decoded_job_is_the_one_its_constructor_makes(spec: JobSpec) -> None:
    decoded = JobSpec.from_json(spec.to_json())
    assert_made_whole(decoded)
    assert decoded == spec


@given(specs, st.integers(1, 9), st.none() | st.integers(0, 5))
def test_evolve_is_dataclasses_replace(spec: JobSpec, attempt: int, epoch: int | None) -> None:
    evolved = spec.evolve(attempt=attempt, epoch=epoch)
    assert_made_whole(evolved)
    assert evolved == dataclasses.replace(spec, attempt=attempt, epoch=epoch)
    assert spec.attempt == rebuilt(spec).attempt  # the original is left as it was


def test_evolve_refuses_a_field_the_job_does_not_have() -> None:
    with pytest.raises(TypeError, match="no field 'atempt'"):
        JobSpec(id="j", type="t", name="n").evolve(atempt=2)


def test_made_records_stay_frozen() -> None:
    spec = JobSpec.from_json({"type": "t", "attempt": 2}, job_id="j")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.attempt = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw",
    [
        {"cloud": "c", "attempt": 2, "ok": True, "result_json": "[1]", "replied": True},
        {"cloud": "c", "ok": False, "error": {"kind": "E"}, "retry": True, "retry_delay": 2.5},
        {"ok": True, "started": 1_800_000_000_000, "finished": 1_800_000_000_001},
    ],
)
def test_a_decoded_outcome_and_its_finish_are_the_ones_their_constructors_make(
    raw: dict[str, Any],
) -> None:
    outcome = Outcome.from_json(raw, "j")
    assert_made_whole(outcome)
    assert_made_whole(outcome.finish)
    assert Outcome.from_json(outcome.to_json(), "j") == outcome
    assert isinstance(outcome.finish, Finish)


def test_resolve_leaves_a_flat_record_as_it_is_and_copies_one_holding_a_timestamp() -> None:
    flat = {"id": "j", "attempt": 1, "assigned": 5}
    assert resolve(flat, 42) is flat
    nested = {"id": "j", "at": dict(SERVER_TIMESTAMP), "chain": {"id": "c", "step": 1}}
    resolved = resolve(nested, 42)
    assert resolved == {"id": "j", "at": 42, "chain": {"id": "c", "step": 1}}
    assert nested["at"] == SERVER_TIMESTAMP  # what the batch sends is untouched
    assert resolve(dict(SERVER_TIMESTAMP), 42) == 42
