"""What the router needs from a host: the local runtime or the Worker's Durable Object stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class Backend(Protocol):
    """Run operations behind the API. Errors are the engine's (RunNotFound, InvalidInput, ...)."""

    def workflows(self) -> list[dict[str, Any]]:
        """The manifest: one entry per workflow."""

    async def start(self, workflow: str, input: Any, idempotency_key: str | None,
                    respond_async: bool = False) -> tuple[dict[str, Any], bool]:
        """Start a run; returns (run, created). An existing idempotency key returns its run, False.

        ``respond_async`` (``Prefer: respond-async``) lets a host queue the start and answer at once
        with the run's id and status ``queued``; hosts without a queue start it right away.
        """

    async def get(self, run_id: str) -> dict[str, Any]:
        """Everything about one run."""

    async def list_runs(self, workflow: str | None, status: str | None, limit: int,
                        cursor: str | None, id_prefix: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of runs, newest first, and the cursor of the next page (None at the end); with
        ``id_prefix``, only the runs whose id starts with it."""

    async def events(self, run_id: str, after: int, limit: int | None) -> list[dict[str, Any]]:
        """Stored events with ``seq > after``."""

    def stream(self, run_id: str, after: int, follow: bool) -> AsyncIterator[tuple[int, str, str]]:
        """(seq, type, JSON text) of every event after ``after``, then live ones until the run ends."""

    async def send_event(self, run_id: str, event_type: str, payload: Any) -> None:
        """Deliver an event."""

    async def answer(self, run_id: str, value: Any, step: str | None) -> str:
        """Answer an open question; returns its step key."""

    async def cancel(self, run_id: str, reason: str) -> dict[str, Any]:
        """Cancel; returns the run."""

    async def pause(self, run_id: str, reason: str) -> dict[str, Any]:
        """Pause; returns the run."""

    async def resume(self, run_id: str) -> dict[str, Any]:
        """Resume a paused run; returns the run."""

    async def retry(self, run_id: str) -> dict[str, Any]:
        """Continue a failed run from its failed steps; returns the run."""

    async def restart(self, run_id: str, from_step: str | None) -> dict[str, Any]:
        """A new run of the same workflow and input reusing the recorded results before ``from_step``
        (None: none); returns the new run. The run itself is left as it is."""

    async def delete(self, run_id: str) -> None:
        """Remove a finished run with its index row and payloads (`RunStateConflict` if unfinished)."""

    async def prune(self, older_than: float, statuses: tuple[str, ...], dry_run: bool,
                    limit: int) -> list[str]:
        """Delete (``dry_run``: list) up to ``limit`` runs in ``statuses`` finished over ``older_than``
        seconds ago, oldest first; returns their ids."""

    async def ai_calls(self, run_id: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` rows of the AI call log (`flareflow.migrations.ai_calls`), filtered."""

    async def finished(self, run_id: str, timeout: float) -> dict[str, Any]:
        """The run once it has finished, or as it is after ``timeout`` seconds (``POST /api/workflow``)."""

    async def ai_config(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        """The ``config:ai`` document; with ``document`` (already checked), store it first."""
