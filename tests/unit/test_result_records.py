"""The result records: an ``Outcome`` carries its ``Finish`` (jobs.py), built once by the cloud."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from atmosphere.completion import Verdict, judge, judged
from atmosphere.jobs import Finish, JobSpec, JobState, Outcome

ERROR = {"kind": "JobFailed", "message": "boom"}


def test_an_outcome_is_built_from_its_jobs_identity_and_reads_through_its_finish() -> None:
    spec = JobSpec(id="j1", type="t", name="n", attempt=3, retries=5)
    finish = Finish(ok=False, error=ERROR, retry_delay=2.0)
    outcome = Outcome.of(spec, finish, cloud="c1", final=False, started=1.5)
    assert (outcome.job_id, outcome.cloud, outcome.attempt) == ("j1", "c1", 3)
    assert (outcome.ok, outcome.error, outcome.retry_delay) == (False, ERROR, 2.0)
    assert outcome.to_json()["retry"] is True  # the wire's word for "not final"


def test_the_ask_for_a_retry_stays_in_the_cloud_and_a_final_one_says_so() -> None:
    asked = Finish(ok=False, error=ERROR, retry_asked=True, retry_delay=4.0)
    last = JobSpec(id="j", type="t", name="n", attempt=2, retries=1)
    travels = judged(asked, judge(last, asked))
    assert not travels.retry_asked and travels.retry_delay is None
    assert travels.error is not None and "no attempt is left" in travels.error["message"]
    again = judged(asked, Verdict(ok=False, final=False, state=JobState.RETRYING))
    assert again == Finish(ok=False, error=ERROR, retry_delay=4.0)


@given(
    ok=st.booleans(),
    final=st.booleans(),
    delay=st.none() | st.floats(0, 1e6, allow_nan=False),
    result=st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    replied=st.booleans(),
    attempt=st.integers(1, 1000),
)
def test_an_outcome_made_by_the_cloud_survives_the_wire(
    ok: bool, final: bool, delay: float | None, result: object, replied: bool, attempt: int
) -> None:
    spec = JobSpec(id="j", type="t", name="n", attempt=attempt)
    error = None if ok else ERROR
    finish = Finish(ok=ok, result=result, error=error, retry_delay=delay)
    outcome = Outcome.of(spec, finish, cloud="c", final=final, replied=replied, started=1.25)
    assert Outcome.from_json(outcome.to_json(), "j") == outcome
