"""Every example runs with the one command written at its top, against the embedded default
(on a free port, in a temporary data directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED = {
    "hello_world.py": [
        "RPC returned: Hello World!",
        "RPC completed and returned: This string was generated inside the work function",
    ],
    "chain.py": [
        "chain returned: {'seen': {'param2': 'initial message', "
        "'first': {'a': 1, 'b': 2, 'c': 3}}, 'name': 'job1'}",
        "chain(...) returned: {'seen': {'param2': 'there', 'first': {'a': 1, 'b': 2, 'c': 3}}",
    ],
    "callback_mid_chain.py": [
        "answered after job1: {'a': 1, 'b': 2, 'c': 3}",
        "then job2 ran and returned: {'seen': {'param2': 'y', 'first': {'a': 1, 'b': 2, 'c': 3}}",
        "original form answered with: {'a': 1, 'b': 2, 'c': 3}",
    ],
    "fire_and_forget.py": ["without waiting", ": succeeded"],
    "original_rpc.py": [
        "Doing useful work here!",
        "RPC completed and returned: This string was generated inside the work function",
        "lookupUser answered with the error: {'code': 404, 'reason': 'no user ada'}",
    ],
    "original_chains.py": [
        "chain returned: {'seen': {'param2': 'initial message', "
        "'first': {'a': 1, 'b': 2, 'c': 3}}, 'name': 'job1'}",
        "answered after job1: {'a': 1, 'b': 2, 'c': 3}",
        "fire-and-forget chain, job2: succeeded",
        "report returned: [{'user': 'ada', 'synced': True}, {'user': 'grace', 'synced': True}]",
    ],
    "celery_style.py": [
        "add returned: 5",
        "chain returned: welcome, ada@example.org",
        "fetch returned: [{'fetched': 0}, {'fetched': 1}, {'fetched': 2}]",
        "stopped waiting; the job has not timed out",
        "then: done after all",
        "exact: {'empty': {}, 'list': [], '0': 'a'}",
    ],
    "recursion.py": [
        "report returned: {'report': [{'user': 'ada', 'synced': True}, "
        "{'user': 'grace', 'synced': True}, {'user': 'linus', 'synced': True}]}",
        "reportOriginal returned: {'report': [{'user': 'ada', 'synced': True}, "
        "{'user': 'grace', 'synced': True}, {'user': 'linus', 'synced': True}]}",
    ],
}


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts - {"tasks.py"} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str, tmp_path: Path) -> None:
    command = (EXAMPLES / script).read_text().split("Run:", 1)[1].splitlines()[0].strip()
    assert command == f"python examples/{script}"
    env = {
        **os.environ,
        "ATMOSPHERE_DB_PORT": str(free_port()),
        "ATMOSPHERE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ATMOSPHERE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in EXPECTED[script]:
        assert line in done.stdout, done.stdout
