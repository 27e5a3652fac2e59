"""The mixed stream of jobs a suite submits, every submission and answer noted in the ledger.

Worker threads each loop: pick a kind, submit it, and (for RPC) wait for the answer, so the
number of threads bounds the work in flight and an outage slows the stream instead of piling
it up. Chains with ``callback: true`` and poison jobs are answered through ``then``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from atmosphere import Atmosphere, AtmosphereError, Handle, SubmitFailed, chain
from atmosphere.errors import JobError

from .checks import Expect
from .ledger import Answer, Ledger, Sent, answer_from
from .tasks import BAD_KEY_RESULT, CHAIN_DEEP, TOO_DEEP, nested

# Ordinary work and its weight in the stream.
MIX: dict[str, int] = {"rpc": 5, "rpc_sleep": 2, "chain_cb": 2, "chain_ff": 2, "recursion": 1}
ORDINARY = frozenset(MIX)
# Each poison and the error its caller must get, exactly once.
POISONS: dict[str, Expect] = {
    # Results travel as JSON text (issue 10), so these two come back intact; where a result is
    # stored as a tree the database refuses them and the job fails with InvalidResult.
    "poison_deep": Expect("result nested too deep", error_type="InvalidResult", or_result=True),
    "poison_key": Expect("result key 'a.b'", error_type="InvalidResult", or_result=True),
    "poison_huge": Expect("result over the size limit", error_type="InvalidResult"),
    "poison_exit": Expect("handler calls os._exit(1)", error_type="CloudDied"),
    # Refused (400) where job data is stored as a tree; passed on intact where it travels as
    # JSON text. Either way: one answer, and the stream around it goes on.
    "poison_chain": Expect("chain step result too deep for the next step", or_result=True),
}
# What those two return, to check a result that came back came back whole.
INTACT: dict[str, Any] = {"poison_deep": nested(TOO_DEEP), "poison_key": BAD_KEY_RESULT}
TIMEOUT = 60.0  # long: under chaos only a job the system dropped runs into it
POISON_TRIES = 20  # submissions of one poison while the database refuses them (REFUSED_PAUSE apart)
POISON_TIMEOUT = 120.0  # os._exit needs several cloud deaths and restarts
REFUSED_PAUSE = 0.5  # after a refused submit, as a caller would back off
FLUSH_WAIT = 30.0  # seconds to wait for the maker to write a submission (bounded)


class Workload:
    """Submits the stream through ``app`` until ``stop()``."""

    def __init__(
        self,
        app: Atmosphere,
        ledger: Ledger,
        rng: random.Random,
        *,
        threads: int = 4,
        pause: float = 0.05,
        poison_every: float | None = 20.0,
        poisons: Sequence[str] = tuple(POISONS),
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.rng = rng
        self.pause = pause
        self.poison_every = poison_every
        self.poisons = list(poisons)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"work{i}", daemon=True)
            for i in range(threads)
        ]
        if poison_every:
            self._threads.append(threading.Thread(target=self._poison, name="poison", daemon=True))
        self._kinds = list(MIX)
        self._weights = [MIX[k] for k in self._kinds]
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin submitting."""
        for thread in self._threads:
            thread.start()

    def stop_submitting(self) -> None:
        """Submit nothing more (RPCs in flight still wait for their answers)."""
        self._stop.set()

    def stop(self, timeout: float = TIMEOUT + 30) -> None:
        """Stop submitting; wait for the RPCs in flight (bounded by their timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _pick(self) -> str:
        with self._lock:
            return self.rng.choices(self._kinds, self._weights)[0]

    def _loop(self) -> None:
        while not self._stop.wait(self.pause):
            self.submit(self._pick())

    def _poison(self) -> None:
        n = 0
        while not self._stop.wait(self.poison_every or 0):
            kind = self.poisons[n % len(self.poisons)]
            # Refused while the database is down: the same kind again, so a short run still
            # sends each one (a kind refused twice was never judged, and failed the run).
            for _ in range(POISON_TRIES):
                if self.submit(kind) or self._stop.is_set():
                    break
            n += 1

    # -- one submission of each kind --------------------------------------------------------

    def submit(self, kind: str) -> bool:
        """Submit one job of ``kind``; RPC kinds wait for their answer. False: refused (the
        database was down)."""
        t = self.app.tasks
        makers: dict[str, Callable[[], Handle]] = {
            "rpc": lambda: t["noop"].submit(data=1, timeout=TIMEOUT),
            "rpc_sleep": lambda: t["sleep"].submit(data=0.3, timeout=TIMEOUT),
            "recursion": lambda: t["r1"].submit(data=1, timeout=TIMEOUT),
            "chain_cb": lambda: chain(
                t["step"].s(1, timeout=TIMEOUT),
                t["step"].s(2, callback=True),
                t["step"].s(3),
            ).submit(),
            "chain_ff": lambda: chain(t["step"].s(1), t["step"].s(2), t["step"].s(3)).submit(
                forget=True
            ),
            "poison_chain": lambda: chain(
                t["poison_deep"].s(CHAIN_DEEP, timeout=POISON_TIMEOUT), t["step"].s(2)
            ).submit(),
        }
        make = makers.get(kind) or (lambda: t[kind].submit(data=None, timeout=POISON_TIMEOUT))
        at = time.time()
        try:
            handle = make()
        except AtmosphereError as exc:  # the database is down: a clear error, not a job
            self.ledger.add_refused(kind, f"{type(exc).__name__}: {exc}")
            self._stop.wait(REFUSED_PAUSE)
            return False
        # submit() returns before the write; a write that fails is reported on the handle
        # (SubmitFailed), so wait for it to tell a refused submission from a sent one.
        refused = _submit_failed(handle) if self.app.maker.flush(FLUSH_WAIT) else None
        if refused is not None:
            self.ledger.add_refused(kind, f"{type(refused).__name__}: {refused}")
            self._stop.wait(REFUSED_PAUSE)
            return False
        if not handle.tracked:
            # The last step's id is ``{chainId}-{last}``: its execution proves the chain ran.
            self.ledger.add_sent(Sent(handle.id, kind, at, tracked=False, proof=f"{handle.id}-2"))
            return True
        self.ledger.add_sent(Sent(handle.id, kind, at))
        if kind in ("rpc", "rpc_sleep", "recursion"):
            self._wait(handle)
        else:
            handle.then(lambda error, result: self._answered(handle.id, error, result, kind))
        return True

    def _wait(self, handle: Handle) -> None:  # RPC kinds: ordinary work, no intact check
        error: JobError | None = None
        result = None
        try:
            result = handle.get()
        except JobError as exc:
            error = exc
        self._answered(handle.id, error, result)

    def _answered(self, key: str, error: JobError | None, result: Any, kind: str = "") -> None:
        answer = answer_from(key, error, result)
        if error is None and kind in INTACT and result != INTACT[kind]:
            answer = Answer(key, answer.at, ok=False, error="ResultChanged", message=repr(result))
        self.ledger.add_answer(answer)


def _submit_failed(handle: Handle) -> SubmitFailed | None:
    """The handle's SubmitFailed when its submission could not be written, else None."""
    if not handle.done():
        return None
    try:
        handle.get(timeout=0)
    except SubmitFailed as exc:
        return exc
    except AtmosphereError:
        return None
    return None
