"""Atmosphere: Python RPC and jobs on the Firebase Realtime Database.

Register tasks on an app, run them with ``atmosphere cloud myapp.tasks``, and submit jobs
from anywhere with ``task.delay(data)``, ``chain(a.s(...), b.s(...)).submit()`` or, in the
original form, ``app.submit(job, callback)``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Atmosphere as Atmosphere
    from .errors import AtmosphereError as AtmosphereError
    from .errors import CloudDied as CloudDied
    from .errors import ConfigError as ConfigError
    from .errors import DatabaseError as DatabaseError
    from .errors import InvalidJob as InvalidJob
    from .errors import InvalidResult as InvalidResult
    from .errors import InvalidSchedule as InvalidSchedule
    from .errors import JobError as JobError
    from .errors import JobFailed as JobFailed
    from .errors import JobLost as JobLost
    from .errors import JobTimeout as JobTimeout
    from .errors import NoSuchSchedule as NoSuchSchedule
    from .errors import NoSuchType as NoSuchType
    from .errors import PermissionDenied as PermissionDenied
    from .errors import RequestRefused as RequestRefused
    from .errors import ResponseTimeout as ResponseTimeout
    from .errors import Retry as Retry
    from .errors import SubmitFailed as SubmitFailed
    from .errors import UnknownTaskType as UnknownTaskType
    from .handle import Handle as Handle
    from .rain import rain_cloud as rain_cloud
    from .rain import rain_maker as rain_maker
    from .settings import Settings as Settings
    from .task import Chain as Chain
    from .task import Signature as Signature
    from .task import Task as Task
    from .task import chain as chain
    from .task import task as task
    from .types import JSON as JSON
    from .types import LATER as LATER
    from .types import Ticket as Ticket

__version__ = "0.1.0"

__all__ = [
    # the app, tasks and submitting
    "Atmosphere",
    "Task",
    "Signature",
    "Chain",
    "chain",
    "task",
    "Handle",
    "LATER",
    # the original library's entry points (docs/porting.md)
    "rain_maker",
    "rain_cloud",
    # types and configuration
    "Ticket",
    "JSON",
    "Settings",
    # errors
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

# Where each public name lives. They are imported on first use (PEP 562): a process that needs
# one part only, the embedded server above all (``python -m atmosphere.localdb``, started again
# by a supervisor after every crash), does not pay for the app, the maker and their
# dependencies (0.19 s to listening instead of 0.59 s, idle).
_HOMES = {
    "Atmosphere": "app",
    "AtmosphereError": "errors",
    "CloudDied": "errors",
    "ConfigError": "errors",
    "DatabaseError": "errors",
    "InvalidJob": "errors",
    "InvalidResult": "errors",
    "InvalidSchedule": "errors",
    "JobError": "errors",
    "JobFailed": "errors",
    "JobLost": "errors",
    "JobTimeout": "errors",
    "NoSuchSchedule": "errors",
    "NoSuchType": "errors",
    "PermissionDenied": "errors",
    "RequestRefused": "errors",
    "ResponseTimeout": "errors",
    "Retry": "errors",
    "SubmitFailed": "errors",
    "UnknownTaskType": "errors",
    "Handle": "handle",
    "rain_cloud": "rain",
    "rain_maker": "rain",
    "Settings": "settings",
    "Chain": "task",
    "Signature": "task",
    "Task": "task",
    "chain": "task",
    "task": "task",
    "JSON": "types",
    "LATER": "types",
    "Ticket": "types",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # once: later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


class _Package(ModuleType):
    """This package, keeping ``atmosphere.task`` the decorator: importing the submodule of the
    same name makes the import system set the package's ``task`` to that module, which a
    lazy name (unlike the eager ``from .task import task`` it replaces) would not undo. The
    data model allows a module's class to be a ModuleType subclass for such a hook. (The
    imports here are named apart from the submodules, ``types`` above all, for the same
    reason: ``import atmosphere.types`` sets the package's ``types``.)"""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, ModuleType) and name in _HOMES:
            return  # a submodule named like a public name: the name wins, as before
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
