"""Live token frames: the pieces of a streamed answer (``run.ai.generate(..., stream=True)``) as its
run's WebSocket and SSE clients receive them while the model writes.

A frame is ``{"type": "ai.token", "run_id", "step", "text"}`` -- no ``seq``: it is not part of the
durable, gapless event log, is never stored and is not replayed to a client that (re)connects later
(`flareflow.engine.sockets.live_sse_frame`: no SSE ``id`` either, so ``Last-Event-ID`` is untouched).
A reconnecting client gets the finished answer from the log (the step's ``step.completed``), not the
fragments it missed. Clients that follow ``seq`` skip frames without one.
"""

from __future__ import annotations

from typing import Any, Final

TOKEN: Final = "ai.token"


def token_frame(run_id: str, step: str, text: str) -> dict[str, Any]:
    """The frame for one piece ``text`` of the answer the step ``step`` of ``run_id`` is streaming."""
    return {"type": TOKEN, "run_id": run_id, "step": step, "text": text}


def is_live(frame: dict[str, Any]) -> bool:
    """Whether ``frame`` is a live frame (no ``seq``) rather than a logged event."""
    return "seq" not in frame
