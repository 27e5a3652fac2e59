"""Smoke test: the SDK's basic calls and a stream against the embedded server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest


def test_crud_through_the_sdk(sdk_db: Callable[[str], Any]) -> None:
    ref = sdk_db("things")
    assert ref.get() is None
    ref.set({"a": 1, "b": {"c": "x"}})
    assert ref.get() == {"a": 1, "b": {"c": "x"}}
    child = ref.push({"n": 1})
    assert len(child.key) == 20
    assert ref.child(child.key).get() == {"n": 1}
    ref.update({"a": 2, "b/d": True})
    assert ref.child("b").get() == {"c": "x", "d": True}
    assert ref.child("a").get() == 2
    ref.child("b").delete()
    assert ref.child("b").get() is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_listen_gets_initial_put_and_changes(sdk_db: Callable[[str], Any]) -> None:
    ref = sdk_db("watched")
    ref.set({"x": 1})
    events: list[tuple[str, str, Any]] = []
    got_two = threading.Event()

    def on_event(event: Any) -> None:
        events.append((event.event_type, event.path, event.data))
        if len(events) >= 2:
            got_two.set()

    registration = ref.listen(on_event)
    try:
        ref.child("y").set(2)
        assert got_two.wait(5)
    finally:
        registration.close()
    assert events[:2] == [("put", "/", {"x": 1}), ("put", "/y", 2)]
