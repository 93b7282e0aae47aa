"""The wire vocabulary: every host (local runtime, Durable Object) emits exactly these events.

An event on the wire is one flat JSON object: ``seq``, ``type``, ``run_id``, ``at`` (ISO 8601 UTC)
and the type-specific fields listed in `EVENT_FIELDS`. Fixing the vocabulary in one place keeps the
terminal view, the HTTP/WebSocket API and the Worker speaking the same language.

``error`` (``step.failed``, ``step.retrying``, ``run.failed``) is ``{"type", "message", "traceback"}``:
``traceback`` lists the frames of the user's code, outermost first, each ``{"file", "line",
"function"}`` (flareflow's and the standard library's frames left out; ``file`` relative to the
project's import root), at most `flareflow.engine.tracebacks.MAX_FRAMES` of them, the innermost;
``traceback_truncated`` says how many more there were, when any. A ``StepFailed`` error (a run that
did not catch a failed step) adds ``step`` and ``cause``, the step's own error.

``logs`` (``step.completed``, ``step.failed``, ``step.retrying``) is what that attempt printed and
logged, a list of ``{"at", "stream": "stdout" | "stderr", "text"}`` (one per line) and ``{"at",
"stream": "log", "level", "logger", "text"}`` (one per logging record), at most
`flareflow.engine.capture.MAX_OUTPUT` bytes of text (a last ``log`` entry says what was cut); ``[]``
when it printed nothing. `flareflow.engine.capture` says what is captured.

``reason`` of ``run.waiting`` is one of `WAIT_REASONS`: ``sleep``, ``event``, ``input``, or ``code``: the
run is held because its code is not there (``name``: the workflow, not registered -- its module
missing or failing to import) or does not match its history (``step``: the recorded call where the
replay diverged; ``divergence``: ``{"position", "recorded", "new"}``, each call ``{"kind", "name",
"key"}``, ``new`` null when the code no longer reaches it); ``message`` says which, and ``until`` is
the next re-check. A held run continues by itself once the code matches.

``task`` (``step.*``, ``run.waiting``, ``input.requested``) is on the events of a declarative task graph's
run (`flareflow.graphs`): the id of the task the step or wait belongs to. Other runs never carry it.
``step.output`` is sent only for steps that stream their output while they run (a graph's ``shell`` and
``docker`` tasks): ``lines`` as in ``logs``; the step's ``logs`` still hold every line at its end.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Final

RUN_STARTED: Final = "run.started"
STEP_STARTED: Final = "step.started"
STEP_COMPLETED: Final = "step.completed"
STEP_FAILED: Final = "step.failed"
STEP_RETRYING: Final = "step.retrying"
STEP_OUTPUT: Final = "step.output"
RUN_WAITING: Final = "run.waiting"
INPUT_REQUESTED: Final = "input.requested"
INPUT_RECEIVED: Final = "input.received"
EVENT_RECEIVED: Final = "event.received"
RUN_COMPLETED: Final = "run.completed"
RUN_FAILED: Final = "run.failed"
RUN_CANCELLED: Final = "run.cancelled"
RUN_PAUSED: Final = "run.paused"
RUN_RESUMED: Final = "run.resumed"
RUN_RETRIED: Final = "run.retried"

#: Type-specific fields of each event (besides seq, type, run_id, at). Documentation and a test oracle.
EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    # plus "trigger": "cron" when a cron schedule started the run, and, for a run started by a restart,
    # "restarted_from": {"run_id", "step"} (step: None from the beginning) and "reused" (the step keys
    # whose recorded results it took over)
    RUN_STARTED: ("workflow", "input"),
    # every step.* event of a domain call (`flareflow.engine.domains`) adds "hash", the call's 16 hex
    # characters; its "name" is the call's path (Inventory.check) and "step" is PATH@HASH#N
    STEP_STARTED: ("step", "name", "attempt"),
    STEP_COMPLETED: ("step", "name", "attempt", "duration_ms", "result", "patch", "logs"),
    STEP_FAILED: ("step", "name", "attempt", "duration_ms", "error", "logs"),
    STEP_RETRYING: ("step", "name", "attempt", "duration_ms", "error", "delay", "retry_at", "logs"),
    # while a step that streams its output runs (a task graph's shell/docker task): the lines written
    # since the last one, as in ``logs``; at most every `flareflow.engine.run.LIVE_INTERVAL` seconds
    STEP_OUTPUT: ("step", "name", "attempt", "lines"),
    # plus "event_type" when reason == "event"; "message" (and "divergence") when reason == "code"
    RUN_WAITING: ("reason", "step", "name", "until"),
    INPUT_REQUESTED: ("step", "prompt", "schema"),
    INPUT_RECEIVED: ("step", "value"),
    EVENT_RECEIVED: ("event_type", "payload"),
    RUN_COMPLETED: ("output", "patch"),
    RUN_FAILED: ("error",),  # error: as on step.failed (type, message, traceback)
    RUN_CANCELLED: ("reason",),
    RUN_PAUSED: ("reason",),
    RUN_RESUMED: (),
    RUN_RETRIED: ("steps",),  # a failed run continues: "steps" are the failed steps given fresh attempts
}

#: Why a run waits (``reason`` of ``run.waiting``; ``kind`` of its open waits and index ``waiting_for``).
WAIT_REASONS: Final = ("sleep", "event", "input", "code")
#: The reason of a run held for its code (a missing or broken workflow module, a replay divergence).
CODE_REASON: Final = "code"

#: ``trigger`` of a ``run.started`` a cron schedule caused; API starts carry no ``trigger`` field.
CRON_TRIGGER: Final = "cron"
TRIGGERS: Final = (CRON_TRIGGER,)

TERMINAL_EVENTS: Final = frozenset({RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED})


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds and a ``Z``."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def wire_event(seq: int, type_: str, run_id: str, at: float, body: dict[str, Any]) -> dict[str, Any]:
    """Assemble the flat wire object; the common fields come first so logs read well."""
    event: dict[str, Any] = {"seq": seq, "type": type_, "run_id": run_id, "at": iso(at)}
    event.update(body)
    return event
