"""Judging a run from its ledger (pure functions over plain records, unit-tested)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from atmosphere.jobs import InvalidRecord, payload

from .ledger import Answer, Execution, Fault, Sent, run_mark

# A fault explains a second execution if it began before it and was still in effect (or ended
# at most this many seconds) before the first one started.
EXPLAIN_SLACK = 1.0


@dataclass(frozen=True)
class Expect:
    """The one error a poison job must be answered with."""

    label: str  # what the table calls it
    error_type: str | None = None  # the remote type, e.g. InvalidResult
    message: str | None = None  # a part of the message, e.g. "died"
    or_result: bool = False  # a result is fine too (the poison may be harmless by design)

    def matches(self, answer: Answer) -> bool:
        """True when ``answer`` is this error."""
        if answer.ok:
            return self.or_result
        if self.error_type is not None and answer.error_type != self.error_type:
            return False
        return self.message is None or self.message in answer.message

    def describe(self) -> str:
        """``JobFailed(InvalidResult)`` or ``an error saying 'died'``."""
        parts = [f"type {self.error_type}"] if self.error_type else []
        if self.message:
            parts.append(f"message with {self.message!r}")
        text = ", ".join(parts) or "any error"
        return f"{text}, or its result intact" if self.or_result else text


@dataclass(frozen=True)
class PoisonResult:
    """How the poison jobs of one kind were answered."""

    sent: int
    exactly_once: int  # answered once, with the expected error, and one reply on the wire
    wrong: list[str]  # answers that were not the expected error
    unanswered: int
    rewritten: int  # replies written again on the wire (see ``rewritten``)


def first_answers(answers: Iterable[Answer]) -> dict[str, Answer]:
    """The first answer per key."""
    out: dict[str, Answer] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        out.setdefault(answer.key, answer)
    return out


def record_of(sent: Sent) -> str:
    """The job whose record holds the result a tracked submission is answered with."""
    return f"{sent.key}-1" if sent.kind == "chain_cb" else sent.key


def contradictions(
    sent: Iterable[Sent], answers: Mapping[str, Answer], records: Mapping[str, Any]
) -> list[str]:
    """Keys whose job record holds another execution's result than the one answered."""
    out = []
    for s in sent:
        answer = answers.get(s.key)
        if answer is None or not answer.ok or not answer.mark:
            continue
        record = records.get(record_of(s))
        result = payload(record, "result") if isinstance(record, dict) else None
        if run_mark(result) != answer.mark:
            out.append(s.key)
    return out


def contradiction_details(
    keys: Iterable[str],
    sent: Iterable[Sent],
    answers: Mapping[str, Answer],
    records: Mapping[str, Any],
    executions: Sequence[Execution],
    faults: Sequence[Fault],
    began: float,
) -> list[dict[str, Any]]:
    """What a contradicting submission's record, answer, runs and nearby faults say (so a
    failed run explains itself from its report alone). Times are seconds into the run."""
    by_key = {s.key: s for s in sent}
    out = []
    for key in keys:
        s = by_key[key]
        job_id = record_of(s)
        record = records.get(job_id)
        record = record if isinstance(record, dict) else {}
        answer = answers[key]
        runs = sorted(e.at for e in executions if e.job_id == job_id)
        lo, hi = (runs[0] - 15, runs[-1] + 15) if runs else (answer.at - 30, answer.at)
        out.append(
            {
                "key": key,
                "kind": s.kind,
                "answered": [round(answer.at - began, 2), answer.mark],
                "record": {
                    "mark": _mark_of(record),
                    **{k: record.get(k) for k in ("cloud", "state", "deaths", "attempt", "late")},
                    "first_finish": _mark_of(record.get("first_finish")),
                },
                "runs": [round(at - began, 2) for at in runs],
                "faults": [
                    (f.kind, f.target, round(f.at - began, 2), round(f.until - began, 2))
                    for f in faults
                    if f.until >= lo and f.at <= hi
                ],
            }
        )
    return out


def _mark_of(raw: Any) -> str:
    """The run mark of the result a record (or a kept first finish) holds, "" if none."""
    try:
        return run_mark(payload(raw, "result")) if isinstance(raw, dict) else ""
    except InvalidRecord:
        return "<not JSON>"


def lost(sent: Iterable[Sent], answers: Mapping[str, Answer], executed: set[str]) -> list[str]:
    """Keys of submissions that never got their response (or, untracked, never ran).

    A JobTimeout is a loss here: the suites give jobs long timeouts, so only a job the system
    dropped runs into one.
    """
    out = []
    for s in sent:
        if s.tracked:
            answer = answers.get(s.key)
            if answer is None or answer.error == "JobTimeout":
                out.append(s.key)
        elif s.proof is not None and s.proof not in executed:
            out.append(s.key)
    return out


def failed(sent: Iterable[Sent], answers: Mapping[str, Answer]) -> Counter[str]:
    """Ordinary tracked submissions answered with an error other than a timeout, by error."""
    out: Counter[str] = Counter()
    for s in sent:
        answer = answers.get(s.key)
        if s.tracked and answer is not None and not answer.ok and answer.error != "JobTimeout":
            out[f"{answer.error}({answer.error_type}): {answer.message[:80]}"] += 1
    return out


def answered_twice(answers: Iterable[Answer]) -> dict[str, int]:
    """Keys a caller got more than one response for, and how many."""
    counts = Counter(a.key for a in answers)
    return {key: n for key, n in counts.items() if n > 1}


def rewritten(payloads: Mapping[str, int]) -> dict[str, int]:
    """Reply ids written with more than one distinct payload on the wire, and how many.

    A frozen cloud's late run writes its reply over the first; the dispatcher writes the first
    back and the maker delivers only the first, so no caller gets two. Counted, not failed.
    """
    return {key: n for key, n in payloads.items() if n > 1}


def executed_twice(
    executions: Sequence[Execution], faults: Sequence[Fault]
) -> tuple[dict[str, int], dict[str, int]]:
    """Jobs that ran more than once: (explained by a fault in between, unexplained)."""
    runs: dict[str, list[float]] = defaultdict(list)
    for e in executions:
        runs[e.job_id].append(e.at)
    explained: dict[str, int] = {}
    unexplained: dict[str, int] = {}
    for job_id, times in runs.items():
        if len(times) < 2:
            continue
        first, last = min(times), max(times)
        hit = any(f.at <= last and f.until >= first - EXPLAIN_SLACK for f in faults)
        (explained if hit else unexplained)[job_id] = len(times)
    return explained, unexplained


def is_tick(job_id: str, schedule: str) -> bool:
    """True for the job id of one of ``schedule``'s ticks (``<push time>@<schedule>``)."""
    return job_id.endswith(f"@{schedule}")


@dataclass(frozen=True)
class TickRuns:
    """How a schedule's ticks ran: judged as jobs are (a rerun needs a fault to explain it)."""

    executed: int  # distinct ticks that ran by the end of the stream
    after_fault: dict[str, int]  # tick job id -> runs, with a crash/freeze in between
    unexplained: dict[str, int]  # tick job id -> runs, no fault to explain it: fired twice


def tick_runs(
    executions: Sequence[Execution], faults: Sequence[Fault], schedule: str, stopped: float
) -> TickRuns:
    """Judge ``schedule``'s ticks; every run of a tick counts, even one in the drain."""
    ticks = [e for e in executions if is_tick(e.job_id, schedule)]
    explained, unexplained = executed_twice(ticks, faults)
    executed = {e.job_id for e in ticks if e.at <= stopped}
    return TickRuns(len(executed), explained, unexplained)


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def longest_stall(
    waiting: Iterable[tuple[float, float]], completions: Iterable[float]
) -> tuple[float, float]:
    """The longest time with work waiting and no completion: ``(seconds, when it began)``.

    ``waiting`` holds one ``(submitted, answered or end of run)`` interval per job; a stall is
    a stretch covered by some interval and free of completions.
    """
    done = sorted(completions)
    best = (0.0, 0.0)
    for start, end in _union(waiting):
        cuts = [start, *(c for c in done if start < c < end), end]
        for a, b in zip(cuts, cuts[1:], strict=False):
            if b - a > best[0]:
                best = (b - a, a)
    return best


def recovery(faults: Iterable[Fault], completions: Iterable[float]) -> dict[str, list[float]]:
    """Per fault kind: seconds from each fault to the next ordinary completion after it."""
    done = sorted(completions)
    out: dict[str, list[float]] = defaultdict(list)
    for fault in faults:
        after = next((c for c in done if c > fault.at), None)
        if after is not None:
            out[fault.kind].append(after - fault.at)
    return dict(out)


def median_max(values: Sequence[float]) -> tuple[float, float]:
    """``(median, max)`` of ``values``; zeros when empty."""
    if not values:
        return 0.0, 0.0
    return statistics.median(values), max(values)


def poison_results(
    sent: Iterable[Sent],
    answers: Sequence[Answer],
    payloads: Mapping[str, int],
    expected: Mapping[str, Expect],
) -> dict[str, PoisonResult]:
    """For each poison kind in ``expected``: answered exactly once with its error?"""
    per_key: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        per_key[answer.key].append(answer)
    by_kind: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        if s.kind in expected:
            by_kind[s.kind].append(s)
    out = {}
    for kind, expect in expected.items():
        once, wrong, unanswered, dup = 0, [], 0, 0
        for s in by_kind.get(kind, []):
            got = per_key.get(s.key, [])
            dup += payloads.get(s.key, 0) > 1
            if not got:
                unanswered += 1
            elif len(got) == 1 and expect.matches(got[0]):
                once += 1
            else:
                a = got[0]
                wrong.append(f"{a.error or 'ok'}({a.error_type}): {a.message[:120]}")
        out[kind] = PoisonResult(len(by_kind.get(kind, [])), once, wrong, unanswered, dup)
    return out
