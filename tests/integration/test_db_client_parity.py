"""MemoryDatabase and the real stack (FirebaseDatabase + embedded server) agree.

The same seeded random writes go to both; values, query results and the events a listener
receives must be identical, so unit tests on MemoryDatabase predict the real behaviour.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from atmosphere.db.base import Database
from atmosphere.db.client import FirebaseDatabase
from atmosphere.db.tree import normalise, split_path
from atmosphere.testing import MemoryDatabase
from tests.support import ServerProcess, wait_until

KEYS = ["a", "b", "c", "1", "2"]
WHERE = ("t", "t/a", "t/b/c")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 2 or roll < 0.45:
        return rng.choice([None, 0, 1, 2.5, -3, "", "s", "t", True, False])
    if roll < 0.55:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {k: random_value(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(0, 3))}


def random_path(rng: random.Random) -> str:
    return "/".join(rng.choice(KEYS) for _ in range(rng.randint(1, 3)))


def random_ops(seed: int, n: int) -> list[tuple[str, str, Any]]:
    rng = random.Random(seed)
    ops: list[tuple[str, str, Any]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.5:
            ops.append(("set", "t/" + random_path(rng), random_value(rng)))
        elif roll < 0.85:
            entries = {random_path(rng): random_value(rng) for _ in range(rng.randint(1, 3))}
            ops.append(("update", "t/" + rng.choice(["", "a", "b/c"]), entries))
        else:
            ops.append(("delete", "t/" + random_path(rng), None))
    return ops


def empties_below_a_primitive(db: MemoryDatabase, op: tuple[str, str, Any]) -> bool:
    """Whether ``op`` deletes something below a primitive (the embedded server differs there)."""
    kind, path, value = op
    writes = [(path, value)] if kind != "update" else [(f"{path}/{k}", v) for k, v in value.items()]
    for where, new in writes:
        if normalise(new) is not None:
            continue
        segs = split_path(where)
        for i in range(1, len(segs)):
            above = db.get("/".join(segs[:i]))
            if above is not None and not isinstance(above, (dict, list)):
                return True
    return False


def replay(db: Database, ops: list[tuple[str, str, Any]]) -> list[str]:
    outcomes = []
    for op, path, value in ops:
        try:
            if op == "set":
                db.set(path, value)
            elif op == "update":
                db.update(path, value)
            else:
                db.delete(path)
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(type(error).__name__)
    return outcomes


def _same_tail(a: list[Any], b: list[Any]) -> bool:
    return a[-1:] == b[-1:]


def record(db: Database, path: str) -> tuple[list[Any], Any]:
    events: list[Any] = []
    listener = db.listen(path, lambda kind, p, data: events.append((kind, p, data)))
    assert listener.wait_connected(10)
    return events, listener


@pytest.mark.parametrize("seed", range(1, 7))
def test_same_values_and_events(db_server: ServerProcess, ns: str, seed: int) -> None:
    real = FirebaseDatabase(db_server.db_url(ns))
    memory = MemoryDatabase()
    try:
        ops = []
        for op in random_ops(seed, 60):
            if not empties_below_a_primitive(memory, op):
                ops.append(op)
                replay(memory, [op])
        memory.set("t", None)
        memory.drain()
        streams = {}
        for name, db in (("real", real), ("memory", memory)):
            streams[name] = [record(db, where) for where in WHERE]
        assert replay(real, ops) == replay(memory, ops)
        for where in WHERE:  # an end marker in every listened subtree
            real.set(f"{where}/zz", True)
            memory.set(f"{where}/zz", True)
        memory.drain()
        for (events, listener), (mem_events, mem_listener) in zip(
            streams["real"], streams["memory"], strict=True
        ):
            caught_up: Callable[[], bool] = partial(_same_tail, events, mem_events)
            wait_until(caught_up, 10)
            assert events == mem_events
            listener.close()
            mem_listener.close()
        assert real.get("t") == memory.get("t")
        for order_by in ("$key", "$value", "a", "b/c"):
            assert real.query("t", order_by=order_by) == memory.query("t", order_by=order_by)
            assert list(real.query("t", order_by=order_by, limit_to_last=2)) == list(
                memory.query("t", order_by=order_by, limit_to_last=2)
            )
        bounds: list[dict[str, Any]] = [
            {"start_at": 0},
            {"end_at": "s"},
            {"start_at": False, "end_at": 1},
            {"equal_to": True},
            {"start_at": "", "limit_to_first": 2},
        ]
        for order_by in ("$value", "a", "b/c"):
            for kw in bounds:
                assert list(real.query("t", order_by=order_by, **kw)) == list(
                    memory.query("t", order_by=order_by, **kw)
                ), (order_by, kw)
        assert list(real.query("t", order_by="$key", start_at="1", end_at="b")) == list(
            memory.query("t", order_by="$key", start_at="1", end_at="b")
        )
        assert real.get("t", shallow=True) == memory.get("t", shallow=True)
    finally:
        real.close()
        memory.close()


def test_writing_nothing_below_a_primitive_keeps_it(db_server: ServerProcess, ns: str) -> None:
    real = FirebaseDatabase(db_server.db_url(ns))
    try:
        writes: list[Callable[[], None]] = [
            partial(real.set, "p/a", {}),
            partial(real.update, "p", {"a": None}),
            partial(real.delete, "p/a"),
        ]
        for write in writes:
            real.set("p", True)
            write()
            assert real.get("p") is True
    finally:
        real.close()
