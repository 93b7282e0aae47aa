"""flareflow: durable async Python workflows, run locally or on Cloudflare Durable Objects.

Write a workflow::

    from flareflow import workflow, Run

    @workflow("hello")
    async def hello(run: Run, name: str = "world") -> str:
        greeting = await run.step("greet", make_greeting, name)
        return greeting
"""

from .engine import (
    Domain,
    DurationError,
    FlareflowError,
    InvalidInput,
    Method,
    NonRetryableError,
    Registry,
    ReplayDivergence,
    Retry,
    Run,
    ScheduleError,
    StepContext,
    StepFailed,
    StepTimeout,
    WaitTimeout,
    WorkflowDefinitionError,
    WorkflowNotFound,
    every,
    workflow,
)

__version__ = "0.1.0"

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
    "WorkflowDefinitionError",
    "WorkflowNotFound",
    "__version__",
    "every",
    "workflow",
]
