"""Errors a workflow author or a host can see.

Control-flow signals (`Suspend`, `Cancelled`) derive from `BaseException` on purpose: a workflow
that wraps its body in ``except Exception`` must not swallow the runtime's request to unwind.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, ClassVar

from .tracebacks import traceback_fields


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean "X"?)`` naming the option closest to a mistyped ``word``, or ``""``: the one
    wording of every such hint (task-graph fields and ids, domain names): the closest spelling, or else
    an option the word abbreviates (``qty`` -> ``quantity``)."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close and len(word) >= 2:  # an abbreviation: its letters in order, same first letter (qty)
        close = [o for o in options if o[:1] == word[:1] and _in_order(word, o)][:1]
    return f' (did you mean "{close[0]}"?)' if close else ""


def _in_order(short: str, long: str) -> bool:
    letters = iter(long)
    return all(ch in letters for ch in short)


class FlareflowError(Exception):
    """Base of every error flareflow raises for a user to read.

    An error a client can cause or meet carries its wire form here, once: ``code`` and
    ``http_status`` (and ``field``, ``retry_after``) are what the API answers (`wire_error`), and
    `error_from_wire` turns such an answer back into the same class (the Worker reading its Durable
    Objects' answers). ``code = None``: not an API error (a 500 if it ever reaches the router).
    """

    code: ClassVar[str | None] = None
    http_status: ClassVar[int] = 500
    #: The request field the error is about, when the class always names one (``run_id``, ...).
    default_field: ClassVar[str | None] = None
    #: Seconds a client should wait before retrying (the ``Retry-After`` header), if any.
    retry_after: ClassVar[int | None] = None

    @property
    def field(self) -> str | None:
        return self.default_field


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
    """The workflow code no longer matches the history recorded for this run.

    Never a run's failure: the host holds the run (``waiting``, reason ``code``) until the code
    matches again. ``position`` is where the two part; ``recorded`` and ``new`` are the calls there,
    each ``{"kind", "name", "key"}`` (``new`` None: the code no longer reaches the recorded call).
    """

    def __init__(self, message: str, *, position: str | None = None, recorded: dict[str, Any] | None = None,
                 new: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.position = position
        self.recorded = recorded
        self.new = new

    def describe(self) -> dict[str, Any]:
        """``{"position", "recorded", "new"}``: what `flareflow check` and a held run report."""
        return {"position": self.position, "recorded": self.recorded, "new": self.new}


class WorkflowDefinitionError(FlareflowError):
    """A workflow is declared wrongly (not async, duplicate name, bad options)."""


class WorkflowNotFound(FlareflowError):
    """No workflow is registered under the requested name."""

    code = "workflow_not_found"
    http_status = 404
    default_field = "workflow"


class InvalidInput(FlareflowError):
    """Input, an answer or an event does not fit what it is delivered to."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        self._field = field
        super().__init__(message)

    @property
    def field(self) -> str | None:
        return self._field


class RunNotFound(FlareflowError):
    """No run has the requested id."""

    code = "run_not_found"
    http_status = 404
    default_field = "run_id"


class RunFinished(FlareflowError):
    """The run has already completed, failed or been cancelled."""

    code = "run_finished"
    http_status = 409


class RunStateConflict(FlareflowError):
    """The run is not in a status the operation works on: a retry of a run that did not fail, the
    deletion of an unfinished run."""

    code = "run_state_conflict"
    http_status = 409
    default_field = "run_id"


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
    retry_after = 5


#: The engine errors with a wire form, by code (derived from the classes, so it cannot drift).
WIRE_ERRORS: dict[str, type[FlareflowError]] = {
    cls.code: cls for cls in (RunNotFound, WorkflowNotFound, RunFinished, RunStateConflict, InvalidInput,
                              StorageError)
    if cls.code is not None
}


def wire_error(exc: FlareflowError) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """``(status, {"error": {code, message, field}}, headers)`` for an error with a wire form, else None."""
    if exc.code is None:
        return None
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else {}
    return exc.http_status, {"error": {"code": exc.code, "message": str(exc), "field": exc.field}}, headers


def error_from_wire(status: int, error: dict[str, Any]) -> FlareflowError:
    """The engine error a ``{"error": ...}`` answer stands for: the class of its code; an unknown code
    is invalid input below 500 and a storage error (retry later) from 500 on."""
    message = str(error.get("message") or f"HTTP {status}")
    cls = WIRE_ERRORS.get(str(error.get("code")))
    if cls is None:
        cls = InvalidInput if status < 500 else StorageError
    if cls is InvalidInput:
        field = error.get("field")
        return InvalidInput(message, str(field) if field is not None else None)
    return cls(message)


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
    """The class name, read without running user code (a metaclass may make ``__name__`` raise)."""
    try:
        name = type.__dict__["__name__"].__get__(type(exc))
    except BaseException:  # pragma: no cover - a type always has one
        name = None
    return _text(cap(str.__str__(name), MAX_TYPE)) if isinstance(name, str) and name else "Error"


def _message(exc: BaseException) -> str:
    """``str(exc)``; when that raises, the exception's repr and what ``__str__`` raised. Never raises.

    The result is an exact ``str`` (a ``str`` subclass from user code could raise again later)."""
    try:
        text = str.__str__(str(exc))
    except BaseException as failure:  # user code: its __str__ may raise anything, even SystemExit
        try:
            shown = str.__str__(repr(exc))
        except BaseException:  # and so may its __repr__
            shown = f"<{_type_name(exc)} object>"
        text = f"{cap(shown, MAX_TYPE * 2)} (its __str__ raised {_type_name(failure)})"
    return text or _type_name(exc)


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON shape an error takes in events and stored steps: ``type``, ``message`` and
    ``traceback`` (the frames of the user's code, `flareflow.engine.tracebacks`; with
    ``traceback_truncated`` when frames were cut); a `StepFailed` adds ``step`` and the step's own
    error as ``cause``.

    Never raises, whatever user code the exception carries (a ``__str__`` that raises gives the repr
    instead; anything else still failing gives a fixed body); stores at most `MAX_MESSAGE` characters
    of the message.
    """
    try:
        if isinstance(exc, StepFailed):
            return {"type": "StepFailed", "message": _text(cap(_message(exc))),
                    "step": _text(cap(str.__str__(str(exc.step)))), "cause": exc.error,
                    **traceback_fields(exc)}
        return {"type": _type_name(exc), "message": _text(cap(_message(exc))), **traceback_fields(exc)}
    except BaseException:
        return {"type": "Error", "message": "the error could not be described (its formatting raised)",
                "traceback": []}


def _text(message: str) -> str:
    """A message as valid Unicode: lone surrogates (undecodable bytes kept by ``surrogateescape``,
    say) become U+FFFD, so the stored error always encodes."""
    return _SURROGATES.sub("\ufffd", message)


_SURROGATES = re.compile("[\ud800-\udfff]")
