"""Live frames of the runs this process executes (``ai.token``, `flareflow.ai.frames`): handed to
whoever listens right now -- the local server's streams, the terminal of ``flareflow run`` -- and
kept nowhere, unlike the run's events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..ai.frames import token_frame

log = logging.getLogger("flareflow.local")

Listener = Callable[[dict[str, Any]], None]


class LiveFrames:
    """Per-run listeners of live frames."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, run_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with each live frame of ``run_id`` from now on; returns an unsubscribe."""
        listeners = self._listeners.setdefault(run_id, [])
        listeners.append(listener)

        def unsubscribe() -> None:
            if listener in listeners:
                listeners.remove(listener)
            if not listeners and self._listeners.get(run_id) is listeners:
                del self._listeners[run_id]

        return unsubscribe

    def publish(self, run_id: str, frame: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(run_id, ())):
            try:
                listener(frame)
            except Exception:  # a broken listener must not break the run
                log.exception("live frame listener failed")

    def token(self, run_id: str, step: str, text: str) -> None:
        """`flareflow.ai.host.StreamSink`: one piece of a streamed answer."""
        if run_id in self._listeners:
            self.publish(run_id, token_frame(run_id, step, text))
