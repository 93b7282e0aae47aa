"""Pure-Python workflow engine: registry, run context, replay, retries, durations, JSON patch.

Standard library only and free of I/O, so the same code runs on CPython and inside a Python
Worker (Pyodide). Hosts plug in through `flareflow.engine.history.Journal`.
"""

from .domains import Domain, Method, StepContext
from .durations import DurationError, parse_duration
from .errors import (
    FlareflowError,
    InvalidInput,
    NonRetryableError,
    ReplayDivergence,
    StepFailed,
    StepTimeout,
    WaitTimeout,
    WorkflowDefinitionError,
    WorkflowNotFound,
)
from .registry import Registry, WorkflowDef, default_registry, workflow
from .retry import Retry
from .run import Run
from .schedules import ScheduleError, every

__all__ = [
    "Domain",
    "DurationError",
    "FlareflowError",
    "InvalidInput",
    "Method",
    "NonRetryableError",
    "Registry",
    "ReplayDivergence",
    "Retry",
    "Run",
    "ScheduleError",
    "StepContext",
    "StepFailed",
    "StepTimeout",
    "WaitTimeout",
    "WorkflowDef",
    "WorkflowDefinitionError",
    "WorkflowNotFound",
    "default_registry",
    "every",
    "parse_duration",
    "workflow",
]
