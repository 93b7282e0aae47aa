"""Errors a workflow author or a host can see.

Control-flow signals (`Suspend`, `Cancelled`) derive from `BaseException` on purpose: a workflow
that wraps its body in ``except Exception`` must not swallow the runtime's request to unwind.
"""

from __future__ import annotations

import re
from typing import Any


class FlareflowError(Exception):
    """Base of every error flareflow raises for a user to read."""


class NonRetryableError(FlareflowError):
    """Raise from a step to fail it at once, skipping any remaining retries."""


class StepFailed(FlareflowError):
    """A step exhausted its retries (or raised `NonRetryableError`).

    Raised inside the workflow at the ``await run.step(...)`` so the author may catch it.
    """

    def __init__(self, step: str, error: dict[str, Any]) -> None:
        self.step = step
        self.error = error
        super().__init__(f"step '{step}' failed: {error.get('type', 'Error')}: {error.get('message', '')}")


class StepTimeout(FlareflowError):
    """One attempt of a step ran longer than its ``timeout``."""


class WaitTimeout(FlareflowError):
    """``wait_for_event`` or ``ask`` reached its timeout with nothing delivered."""

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        super().__init__(f"wait '{name}' timed out after {timeout:g}s")


class ReplayDivergence(FlareflowError):
    """The workflow code no longer matches the history recorded for this run."""


class WorkflowDefinitionError(FlareflowError):
    """A workflow is declared wrongly (not async, duplicate name, bad options)."""


class WorkflowNotFound(FlareflowError):
    """No workflow is registered under the requested name."""


class InvalidInput(FlareflowError):
    """Input, an answer or an event does not fit what it is delivered to."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class RunNotFound(FlareflowError):
    """No run has the requested id."""


class RunFinished(FlareflowError):
    """The run has already completed, failed or been cancelled."""


class StorageError(FlareflowError):
    """The store refused a read or write (disk full, I/O error), or stored state is unreadable,
    foreign or from a newer flareflow.

    Never a workflow's error: the coordinator abandons an activation whose commit raises it (nothing
    half-committed stays visible) and retries the run with backoff; it is not raised into user code
    and never recorded as the run's failure. Over the API it is a 503 with ``Retry-After`` (its wire
    form lives here, once). Messages name runs and files relative to the state directory, never an
    absolute server path.
    """

    code = "storage_error"
    http_status = 503
    #: Seconds a client should wait before retrying (the ``Retry-After`` header).
    retry_after = 5


class Suspend(BaseException):
    """Unwinds the workflow when it must wait (timer, event, answer); the host re-activates it later."""


class Cancelled(BaseException):
    """Unwinds the workflow because the run was cancelled."""


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON shape an error takes in events and stored steps."""
    if isinstance(exc, StepFailed):
        return {"type": "StepFailed", "message": _text(str(exc)), "step": exc.step, "cause": exc.error}
    return {"type": type(exc).__name__, "message": _text(str(exc)) or type(exc).__name__}


def _text(message: str) -> str:
    """A message as valid Unicode: lone surrogates (undecodable bytes kept by ``surrogateescape``,
    say) become U+FFFD, so the stored error always encodes."""
    return _SURROGATES.sub("\ufffd", message)


_SURROGATES = re.compile("[\ud800-\udfff]")
