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


#: Characters of an error message that are stored (step rows, ``step.*`` and ``run.failed`` events);
#: the rest is replaced by a marker giving the full length.
MAX_MESSAGE = 4096
#: Characters of an error's type name that are stored.
MAX_TYPE = 200


def cap(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated: {len(text):,} characters in all]"


def _type_name(exc: BaseException) -> str:
    name = getattr(type(exc), "__name__", None)
    return _text(cap(name, MAX_TYPE)) if isinstance(name, str) and name else "Error"


def _message(exc: BaseException) -> str:
    """``str(exc)``; when that raises, the exception's repr and what ``__str__`` raised. Never raises."""
    try:
        text = str(exc)
    except BaseException as failure:  # user code: its __str__ may raise anything, even SystemExit
        try:
            shown = repr(exc)
        except BaseException:  # and so may its __repr__
            shown = f"<{_type_name(exc)} object>"
        text = f"{cap(shown, MAX_TYPE * 2)} (its __str__ raised {_type_name(failure)})"
    return text or _type_name(exc)


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON shape an error takes in events and stored steps.

    Never raises (a ``__str__`` that raises gives the repr instead); stores at most `MAX_MESSAGE`
    characters of the message.
    """
    if isinstance(exc, StepFailed):
        return {"type": "StepFailed", "message": _text(cap(_message(exc))), "step": _text(cap(str(exc.step))),
                "cause": exc.error}
    return {"type": _type_name(exc), "message": _text(cap(_message(exc)))}


def _text(message: str) -> str:
    """A message as valid Unicode: lone surrogates (undecodable bytes kept by ``surrogateescape``,
    say) become U+FFFD, so the stored error always encodes."""
    return _SURROGATES.sub("\ufffd", message)


_SURROGATES = re.compile("[\ud800-\udfff]")
