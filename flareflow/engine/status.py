"""The run-status vocabulary, once: every host, the router, the CLI and the client use these.

The values are the wire strings (``GET /runs/{id}`` ``status``, the index's ``status`` column,
``?status=`` filters); `RunStatus` is a `StrEnum`, so a member *is* its string — it compares equal to
it, JSON-encodes as it and can be stored as is. A step's own statuses (``running``, ``retrying``,
``waiting``, ``completed``, ``failed``) are a different vocabulary, in `flareflow.engine.history`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunStatus(StrEnum):
    """Where a run is. ``running``: an activation executes or is due; ``waiting``: on a timer, an
    event or an answer; ``paused``: by an operator; the last three are final."""

    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Every status, in the order the API documents them.
STATUSES: Final[tuple[str, ...]] = tuple(status.value for status in RunStatus)
#: A run in one of these never changes again.
TERMINAL: Final[frozenset[str]] = frozenset({RunStatus.COMPLETED.value, RunStatus.FAILED.value,
                                             RunStatus.CANCELLED.value})
#: A run in one of these has work left (it resumes after a crash or a restart).
UNFINISHED: Final[frozenset[str]] = frozenset({RunStatus.RUNNING.value, RunStatus.WAITING.value,
                                               RunStatus.PAUSED.value})


def is_terminal(status: str) -> bool:
    """True when a run with this status is finished for good."""
    return status in TERMINAL


__all__ = ["STATUSES", "TERMINAL", "UNFINISHED", "RunStatus", "is_terminal"]
