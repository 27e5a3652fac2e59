"""Atmosphere: Python RPC and jobs on the Firebase Realtime Database.

Register tasks on an app, run them with ``atmosphere cloud myapp.tasks``, and submit jobs
from anywhere with ``task.delay(data)``, ``chain(a.s(...), b.s(...)).submit()`` or, in the
original form, ``app.submit(job, callback)``.
"""

from __future__ import annotations

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
