"""How one activation of a workflow ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

COMPLETED: Final = "completed"
FAILED: Final = "failed"
SUSPENDED: Final = "suspended"
#: The code does not match the run's history (a replay divergence): the host holds the run.
HELD: Final = "held"


@dataclass(frozen=True)
class Outcome:
    """``completed`` (with output), ``failed`` (with error), ``suspended`` (waiting on a timer or inbox)
    or ``held`` (``error``: the `ReplayDivergence`'s body, with its ``divergence``)."""

    kind: str
    output: Any = None
    error: dict[str, Any] | None = None
    state: Any = None
    patch: list[dict[str, Any]] = field(default_factory=list)
