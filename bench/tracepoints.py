"""Trace points hooked into a process's Atmosphere code as it is imported, for ``bench.trace``.

``install(log_dir)`` wraps the functions in ``POINTS`` when their module is first imported (a
meta path finder: no change to the code under test) so that each call writes one line,
``monotonic_ns pid thread label``, to ``log_dir/{pid}.log``. ``time.monotonic_ns`` reads
CLOCK_MONOTONIC, which every process on the machine shares, so the lines of all processes merge
into one timeline. A mark costs a few microseconds (a lock and a buffered write), which the
figures include.

The child processes (server, dispatcher, cloud) install it from ``bench/_tracesite``'s
``sitecustomize.py`` when ``ATMOSPHERE_TRACE`` names the log directory; the maker (the
``bench.trace`` process itself) calls ``install`` directly.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

ENV = "ATMOSPHERE_TRACE"

_lock = threading.Lock()
_out: TextIO | None = None


def mark(label: str) -> None:
    """Write one trace line (no-op until ``install``)."""
    now = time.monotonic_ns()
    if _out is None:
        return
    with _lock:
        _out.write(f"{now} {os.getpid()} {threading.current_thread().name} {label}\n")


@dataclass(frozen=True)
class Point:
    """Mark calls of ``module.owner.name`` as ``label<`` (and ``label>`` after, if ``after``);
    ``detail(*args)`` adds a word or two to the label."""

    module: str
    owner: str
    name: str
    label: str
    after: bool = False
    detail: Callable[..., str] | None = None


def _request(_self: Any, method: str, segments: Sequence[str], *_a: Any, **_k: Any) -> str:
    return f"{method} /{'/'.join(segments)}"


def _sink_path(self: Any, _data: bytes) -> str:
    listener = getattr(self, "listener", None)
    return "/" + "/".join(getattr(listener, "path", ()) or ())


POINTS = (
    # The client: every request any process makes, and every chunk a stream thread reads.
    Point("atmosphere.db._http", "RestTransport", "request", "request", True, _request),
    Point("atmosphere.db._http", "EventStream", "read", "read", True),
    # The server: a request's first bytes, and each event written to a stream.
    Point("atmosphere.localdb.protocol", "HttpConnection", "data_received", "server.received"),
    Point(
        "atmosphere.localdb.protocol", "HttpConnection", "write", "server.event", False, _sink_path
    ),
    # The dispatcher's write of its decisions; the cloud's handler thread.
    Point("atmosphere.scheduler.dispatcher", "Dispatcher", "_flush", "dispatcher.flush", True),
    Point("atmosphere.worker.cloud", "Cloud", "_run", "cloud.run", True),
)


def _wrap(module: types.ModuleType, point: Point) -> bool:
    owner = getattr(module, point.owner, None)
    fn = getattr(owner, point.name, None)
    if owner is None or fn is None:
        print(
            f"bench.tracepoints: {point.module}.{point.owner}.{point.name} is gone", file=sys.stderr
        )
        return False

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        label = (
            point.label
            if point.detail is None
            else f"{point.label} {point.detail(*args, **kwargs)}"
        )
        mark(label + "<")
        try:
            return fn(*args, **kwargs)
        finally:
            if point.after:
                mark(label + ">")

    setattr(owner, point.name, traced)
    return True


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules named in ``POINTS`` as usual, then wraps their points once executed."""

    def __init__(self, points: Sequence[Point]) -> None:
        self.points: dict[str, list[Point]] = {}
        for point in points:
            self.points.setdefault(point.module, []).append(point)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        points = self.points.get(fullname)
        if points is None:
            return None
        sys.meta_path.remove(self)  # find it the ordinary way, without asking ourselves again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            execute(module)
            for point in points:
                _wrap(module, point)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install(log_dir: str, points: Sequence[Point] = POINTS) -> None:
    """Trace this process into ``log_dir``: modules already imported now, the rest on import."""
    global _out
    # Line-buffered: a child stopped by a signal loses nothing it marked.
    _out = open(os.path.join(log_dir, f"{os.getpid()}.log"), "a", buffering=1)  # noqa: SIM115
    pending = []
    for point in points:
        module = sys.modules.get(point.module)
        if module is None:
            pending.append(point)
        else:
            _wrap(module, point)
    if pending:
        sys.meta_path.insert(0, _Finder(pending))
    mark("started " + " ".join(sys.argv[1:3]))
    atexit.register(flush)


def flush() -> None:
    """Write out what is buffered (at exit, and before the logs are read)."""
    if _out is not None:
        with _lock:
            _out.flush()
