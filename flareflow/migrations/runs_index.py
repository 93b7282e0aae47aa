"""The run index's queries, once for both hosts (beside its schema in ``index/``).

The local ``index.db`` (sqlite3) and the Worker's D1 database ``INDEX`` have the same schema and are
written and read with these statements, so ``GET /runs`` filters and pages the same way on both:
newest first by ``(created_at, id)``, the cursor being the id of the last row of the previous page.
A row says what a waiting run waits for (``waiting_for``), so listings need not wake each run.
Standard library and the engine only (this module ships inside the Worker); the hosts bind the
parameters and turn rows into the API's form with `listed`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..engine.durations import parse_duration
from ..engine.errors import InvalidInput
from ..engine.events import iso
from ..engine.status import TERMINAL

#: The columns of a row, in the order `UPSERT` binds them and `list_query` selects them.
COLUMNS: Final = ("id", "workflow", "status", "idempotency_key", "created_at", "updated_at", "waiting_for")

#: Insert a run's row, or keep it in step with its status (every status change writes it).
UPSERT: Final = (
    "INSERT INTO runs (id, workflow, status, idempotency_key, created_at, updated_at, waiting_for) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET status = excluded.status, "
    "updated_at = excluded.updated_at, waiting_for = excluded.waiting_for"
)

#: Remove a deleted run's rows, each statement bound to its id: its row, and its calls in the AI call
#: log (``ai_calls``, `flareflow.migrations.ai_calls`) -- a deleted or pruned run leaves nothing behind.
DELETE: Final = ("DELETE FROM runs WHERE id = ?1", "DELETE FROM ai_calls WHERE run_id = ?1")

#: At most this many runs one prune request deletes (a Worker request has a time budget).
PRUNE_LIMIT: Final = 100

#: At most this many waits, each prompt cut to `PROMPT_CHARS`, go into a row.
MAX_WAITS: Final = 5
PROMPT_CHARS: Final = 200


def waiting_for(waits: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The compact form of a run's open waits (`RunCoordinator.open_waits`) a listing shows."""
    out = []
    for wait in waits[:MAX_WAITS]:
        entry = {"kind": wait.get("kind"), "name": wait.get("name"), "until": wait.get("until")}
        if wait.get("event_type") is not None:
            entry["event_type"] = wait["event_type"]
        if isinstance(wait.get("prompt"), str):
            entry["prompt"] = wait["prompt"][:PROMPT_CHARS]
        if isinstance(wait.get("message"), str):  # a run held for its code says why
            entry["message"] = wait["message"][:PROMPT_CHARS]
        out.append(entry)
    return out or None


def upsert_params(row: dict[str, Any]) -> tuple[Any, ...]:
    """`UPSERT`'s parameters from a run summary (``id``, ``workflow``, ``status``, ...)."""
    params: list[Any] = []
    for column in COLUMNS:
        value = row.get(column)
        if column == "status":
            value = str(value)
        elif column == "waiting_for":
            value = None if not value else json.dumps(value, separators=(",", ":"))
        params.append(value)
    return tuple(params)


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """A row as ``GET /runs`` shows it: ISO times, ``waiting_for`` as JSON (both hosts)."""
    waits = row.get("waiting_for")
    try:
        decoded = json.loads(waits) if isinstance(waits, str) else None
    except ValueError:  # a row written by hand or damaged: the run's own file stays the truth
        decoded = None
    return {**row, "created_at": iso(float(row["created_at"])), "updated_at": iso(float(row["updated_at"])),
            "waiting_for": decoded}


def list_query(*, workflow: str | None, status: str | None, cursor: str | None,
               limit: int, id_prefix: str | None = None) -> tuple[str, list[Any]]:
    """``(sql, params)`` for one page: newest first by (created_at, id), after ``cursor`` (a run id);
    ``id_prefix`` (lower-case hex, checked by the caller) keeps the ids that start with it."""
    where, params = ["1 = 1"], []  # type: tuple[list[str], list[Any]]
    if workflow is not None:
        where.append("workflow = ?")
        params.append(workflow)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if id_prefix is not None:
        where.append("substr(id, 1, ?) = ?")
        params.extend([len(id_prefix), id_prefix])
    if cursor is not None:
        where.append("(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)")
        params.append(cursor)
    sql = (f"SELECT {', '.join(COLUMNS)} FROM runs WHERE " + " AND ".join(where)
           + " ORDER BY created_at DESC, id DESC LIMIT ?")
    params.append(limit)
    return sql, params


def prune_filter(older_than: Any, status: Any) -> tuple[float, tuple[str, ...]]:
    """The age in seconds and the finished statuses a prune deletes (``runs prune``, ``POST
    /runs/prune``): ``older_than`` a duration (``"30d"``); ``status`` one finished status, a list of
    them, or None for all three. Unfinished statuses are refused (`InvalidInput` naming the field)."""
    if older_than is None:
        raise InvalidInput("'older_than' is required (a duration such as \"30d\")", "older_than")
    try:
        seconds = parse_duration(older_than)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc), "older_than") from None
    chosen = sorted(TERMINAL) if status is None else [status] if isinstance(status, str) else status
    if not isinstance(chosen, list) or not chosen or not all(isinstance(s, str) for s in chosen):
        raise InvalidInput("the statuses to prune must be a status or a list of them", "status")
    unfinished = [s for s in chosen if s not in TERMINAL]
    if unfinished:
        raise InvalidInput(f"only finished runs are pruned ({', '.join(sorted(TERMINAL))}), "
                           f"not '{unfinished[0][:40]}' ones", "status")
    return seconds, tuple(sorted(set(chosen)))


def prune_query(statuses: tuple[str, ...], before: float, limit: int) -> tuple[str, list[Any]]:
    """``(sql, params)``: ids of the runs in ``statuses`` last updated before ``before`` (epoch
    seconds; a finished run's last update is when it finished), oldest first."""
    marks = ", ".join("?" for _ in statuses)
    return (f"SELECT id FROM runs WHERE status IN ({marks}) AND updated_at < ? ORDER BY updated_at, id LIMIT ?",
            [*statuses, before, limit])
