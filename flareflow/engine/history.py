"""What the engine remembers of a run between activations, and the port it records through.

The engine never performs I/O. Each host (the local runtime on sqlite3, the Durable Object on
``ctx.storage.sql``) implements `Journal`: it persists a `StepRecord` together with the events
the change produces in one transaction, and hands back deliveries (events, answers) waiting in the
run's inbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

#: Sentinel for "the tracked state did not change in this commit".
UNCHANGED: Final[Any] = object()

STEP: Final = "step"
SLEEP: Final = "sleep"
EVENT: Final = "event"
INPUT: Final = "input"
#: The marker `Run.patched` records when a run first evaluates a change: no work, only a decision.
PATCH: Final = "patch"

RUNNING: Final = "running"
RETRYING: Final = "retrying"
WAITING: Final = "waiting"
COMPLETED: Final = "completed"
FAILED: Final = "failed"


@dataclass
class StepRecord:
    """One durable unit of a run: a step, a sleep, an event wait or a question.

    ``key`` is the deterministic identity (scope + name + occurrence); ``pos`` is the order in
    which the code reached it, used to detect a replay that no longer matches the code.
    """

    key: str
    pos: str
    kind: str
    name: str
    status: str
    attempts: int = 0
    failures: int = 0
    result: Any = None
    error: dict[str, Any] | None = None
    wake_at: float | None = None
    started_at: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: The JSON text of ``result`` when the engine already encoded it (saves a second dumps).
    result_text: str | None = None
    #: What the attempt this commit ends printed and logged (`flareflow.engine.capture` entries); the
    #: host stores it with the step under that attempt's number. Never read back into the history.
    logs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Delivery:
    """An event or answer from the run's inbox, ready to be consumed by a wait."""

    id: int
    payload: Any


#: How a host runs a sync step function off its event loop: ``offload(fn)`` starts ``fn()`` elsewhere
#: (the local runtime: a thread) and resolves with its result or raises what it raised. Cancelling the
#: awaitable abandons the call: its late result must be dropped.
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]


class Journal(Protocol):
    """The host side of an execution. All writes are synchronous and atomic."""

    #: Where sync step functions run: the host's `Offload` (threads), or None: inline on the loop
    #: (the Worker, where Pyodide cannot start threads).
    offload: Offload | None

    def now(self) -> float:
        """Current time in epoch seconds (injectable, so tests skip time)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the host clock (used for step timeouts)."""

    def commit(
        self,
        record: StepRecord,
        events: list[tuple[str, dict[str, Any]]],
        *,
        state: Any = UNCHANGED,
        delivery: int | None = None,
        durable: bool = True,
    ) -> None:
        """Persist ``record``, append ``events``, store ``state`` and consume ``delivery`` at once.

        ``durable=False`` marks a commit whose loss on power failure is harmless (a step start):
        hosts may skip the fsync; it is still safe against a process crash.
        """

    def find_delivery(self, kind: str, match: str) -> Delivery | None:
        """Oldest unconsumed inbox entry: an event of type ``match`` or the answer to step ``match``."""
