"""The Sockets port: how every host streams a run's events and reads its clients' frames.

One definition, used by the local server (``flareflow.local.server`` / ``backend``) and the Durable
Object shell (``flareflow.durable_objects.cloudflare``), so both hosts speak the same protocol:

- **client frames** (`parse_client_frame`): ``{"type": "input", "value", "step"}`` or ``{"type":
  "event", "event_type", "payload"}``; anything else, a frame that is not JSON, nested too deeply or
  holding a lone surrogate closes *that* socket with `POLICY_VIOLATION` and a `close_reason`; a frame
  larger than the body limit with `MESSAGE_TOO_BIG` (`oversized`);
- **delivery errors** (`error_frame`): a frame that parses but cannot be delivered (the run has
  finished, the answer does not fit) is answered with ``{"type": "error", "error": {...}}`` — the same
  code, message and field the HTTP endpoint answers — and the socket stays open;
- **SSE framing** (`sse_frame`, `SSE_RETRY`, `SSE_KEEPALIVE`): ``id: SEQ`` so ``Last-Event-ID``
  resumes;
- **live frames** (`live_sse_frame`): frames without a ``seq`` (``ai.token``) go to the clients
  connected while they happen and nowhere else: never stored, never part of a catch-up;
- **gapless catch-up** (`catch_up`): after ``after=SEQ`` a client gets every later event once, in
  order, up to and including the terminal one; the server closes with `NORMAL_CLOSURE` and
  `FINISHED_REASON` after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from .errors import FlareflowError, InvalidInput, wire_error
from .events import TERMINAL_EVENTS
from .wirejson import loads_bounded, lone_surrogate_field

NORMAL_CLOSURE: Final = 1000
POLICY_VIOLATION: Final = 1008
MESSAGE_TOO_BIG: Final = 1009
FINISHED_REASON: Final = "run finished"

SSE_RETRY: Final = "retry: 1000\n\n"
SSE_KEEPALIVE: Final = ": keep-alive\n\n"


class FrameError(InvalidInput):
    """A client frame that cannot be read: the socket is closed with 1008 and this message."""

    code = "invalid_frame"


def close_reason(message: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8 (RFC 6455), cut on a character boundary."""
    return message.encode("utf-8")[:123].decode("utf-8", "ignore")


def oversized(raw: str | bytes, limit: int) -> str | None:
    """The close reason for a frame over ``limit`` bytes (as an HTTP body would get 413), else None."""
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    return f"frame is larger than {limit} bytes" if size > limit else None


def parse_client_frame(text: str | bytes) -> dict[str, Any]:
    """Validate a frame a WebSocket client sent: an answer or an event. Raises `FrameError`."""
    try:
        frame = loads_bounded(text)
    except (ValueError, UnicodeDecodeError):
        raise FrameError("frame is not JSON (or is nested too deeply)") from None
    if not isinstance(frame, dict):
        raise FrameError("frame must be a JSON object")
    bad_text = lone_surrogate_field(frame, text, "frame")
    if bad_text is not None:
        raise FrameError(bad_text[1], bad_text[0])
    kind = frame.get("type")
    if kind == "input":
        if "value" not in frame:
            raise FrameError("an input frame needs 'value'", "value")
        step = frame.get("step")
        if step is not None and not isinstance(step, str):
            raise FrameError("'step' must be a string", "step")
        return {"type": "input", "value": frame["value"], "step": step}
    if kind == "event":
        event_type = frame.get("event_type")
        if not isinstance(event_type, str) or not event_type.strip():
            raise FrameError("an event frame needs 'event_type'", "event_type")
        return {"type": "event", "event_type": event_type, "payload": frame.get("payload")}
    raise FrameError("frame 'type' must be 'input' or 'event'", "type")


def error_frame(exc: Exception) -> str:
    """The ``{"type": "error", "error": {...}}`` frame for a delivery that failed."""
    wire = wire_error(exc) if isinstance(exc, FlareflowError) else None
    body = wire[1]["error"] if wire is not None else {
        "code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "field": None}
    return json.dumps({"type": "error", "error": body})


def sse_frame(seq: int, type_: str, text: str) -> str:
    """One Server-Sent Event: ``id`` is the seq, ``event`` the type, ``data`` the wire event's JSON."""
    return f"id: {seq}\nevent: {type_}\ndata: {text}\n\n"


def live_sse_frame(type_: str, text: str) -> str:
    """A live frame as a Server-Sent Event: no ``id``, since it is not in the event log (a streamed AI
    answer's ``ai.token``, `flareflow.ai.frames`); ``Last-Event-ID`` keeps naming the last logged event."""
    return f"event: {type_}\ndata: {text}\n\n"


def catch_up(events: Iterable[dict[str, Any]], last: int) -> tuple[list[dict[str, Any]], int, bool]:
    """The events after seq ``last``, in order and at most once; the new last seq; and whether the
    run's stream is over: the last of them is a terminal event (a retried run has a terminal event
    followed by ``run.retried`` in its log, and its stream goes on)."""
    out: list[dict[str, Any]] = []
    done = False
    for event in events:
        seq = int(event["seq"])
        if seq <= last:
            continue
        out.append(event)
        last = seq
        done = event["type"] in TERMINAL_EVENTS
    return out, last, done
