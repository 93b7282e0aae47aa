"""The run index's queries, once for both hosts (beside its schema in ``index/``).

The local ``index.db`` (sqlite3) and the Worker's D1 database ``INDEX`` have the same schema and are
written and read with these statements, so ``GET /runs`` filters and pages the same way on both:
newest first by ``(created_at, id)``, the cursor being the id of the last row of the previous page.
Standard library only (this module ships inside the Worker); the hosts bind the parameters.
"""

from __future__ import annotations

from typing import Any, Final

#: The columns of a row, in the order `UPSERT` binds them and `list_query` selects them.
COLUMNS: Final = ("id", "workflow", "status", "idempotency_key", "created_at", "updated_at")

#: Insert a run's row, or keep it in step with its status (every status change writes it).
UPSERT: Final = (
    "INSERT INTO runs (id, workflow, status, idempotency_key, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET status = excluded.status, "
    "updated_at = excluded.updated_at"
)


def upsert_params(row: dict[str, Any]) -> tuple[Any, ...]:
    """`UPSERT`'s parameters from a run summary (``id``, ``workflow``, ``status``, ...)."""
    return tuple(str(row[c]) if c == "status" else row[c] for c in COLUMNS)


def list_query(*, workflow: str | None, status: str | None, cursor: str | None,
               limit: int) -> tuple[str, list[Any]]:
    """``(sql, params)`` for one page: newest first by (created_at, id), after ``cursor`` (a run id)."""
    where, params = ["1 = 1"], []  # type: tuple[list[str], list[Any]]
    if workflow is not None:
        where.append("workflow = ?")
        params.append(workflow)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if cursor is not None:
        where.append("(created_at, id) < (SELECT created_at, id FROM runs WHERE id = ?)")
        params.append(cursor)
    sql = (f"SELECT {', '.join(COLUMNS)} FROM runs WHERE " + " AND ".join(where)
           + " ORDER BY created_at DESC, id DESC LIMIT ?")
    params.append(limit)
    return sql, params
