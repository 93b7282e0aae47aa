"""How one activation of a workflow ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

COMPLETED: Final = "completed"
FAILED: Final = "failed"
SUSPENDED: Final = "suspended"


@dataclass(frozen=True)
class Outcome:
    """``completed`` (with output), ``failed`` (with error) or ``suspended`` (waiting on a timer or inbox)."""

    kind: str
    output: Any = None
    error: dict[str, Any] | None = None
    state: Any = None
    patch: list[dict[str, Any]] = field(default_factory=list)
