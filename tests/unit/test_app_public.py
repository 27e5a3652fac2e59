"""The public API: what ``import atmosphere`` offers is pinned, and errors form one hierarchy."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import atmosphere
from atmosphere import errors


def test_public_names_are_pinned() -> None:
    assert atmosphere.__all__ == [
        "Atmosphere",
        "Task",
        "Signature",
        "Chain",
        "chain",
        "task",
        "Handle",
        "LATER",
        "rain_maker",
        "rain_cloud",
        "Ticket",
        "JSON",
        "Settings",
        "AtmosphereError",
        "ConfigError",
        "DatabaseError",
        "PermissionDenied",
        "RequestRefused",
        "InvalidJob",
        "InvalidSchedule",
        "NoSuchSchedule",
        "JobError",
        "JobFailed",
        "InvalidResult",
        "JobTimeout",
        "ResponseTimeout",
        "SubmitFailed",
        "JobLost",
        "UnknownTaskType",
        "NoSuchType",
        "CloudDied",
        "Retry",
    ]
    for name in atmosphere.__all__:
        assert getattr(atmosphere, name) is not None


def test_public_names_load_on_first_use_from_their_home_and_only_those() -> None:
    names = set(atmosphere.__all__)
    assert names <= set(dir(atmosphere))
    for name in names:
        home = importlib.import_module(f"atmosphere.{atmosphere._HOMES[name]}")
        assert getattr(atmosphere, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no_such_name"):
        atmosphere.no_such_name  # noqa: B018
    namespace: dict[str, object] = {}
    exec("from atmosphere import *", namespace)
    assert names <= namespace.keys()


def test_the_embedded_server_alone_imports_nothing_of_the_framework() -> None:
    # What a supervisor's restart pays for: the server's own start-up, not the app's.
    probe = (
        "import sys, atmosphere.localdb.__main__; "
        "print(sorted(m for m in sys.modules if m.startswith(('atmosphere.app', "
        "'atmosphere.cli', 'atmosphere.maker', 'typer', 'rich', 'pydantic'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_error_is_an_atmosphere_error() -> None:
    for name in atmosphere.__all__:
        value = getattr(atmosphere, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, errors.AtmosphereError), name


def test_unknown_task_type_is_a_job_failure_and_rebuilt_from_a_reply() -> None:
    assert atmosphere.NoSuchType is atmosphere.UnknownTaskType
    assert issubclass(atmosphere.UnknownTaskType, atmosphere.JobFailed)
    rebuilt = errors.job_error_from_json({"kind": "UnknownTaskType", "message": "m"}, job_id="j")
    assert isinstance(rebuilt, atmosphere.UnknownTaskType) and rebuilt.job_id == "j"


def test_later_is_a_recognisable_sentinel() -> None:
    assert repr(atmosphere.LATER) == "LATER"
