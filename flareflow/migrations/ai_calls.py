"""The AI call log's queries, once for both hosts (beside its schema, ``index/0003_ai_calls.sql``).

The local ``index.db`` and the Worker's D1 ``INDEX`` hold the same ``ai_calls`` table, written and
read with these statements, so ``GET /ai/calls`` filters and orders the same way on both: newest
first. Standard library and the engine only (this module ships inside the Worker).
"""

from __future__ import annotations

from typing import Any, Final

from ..engine.events import iso

#: The columns a call is written with, in `INSERT`'s order (``id`` is the table's own).
COLUMNS: Final = ("at", "run_id", "step", "kind", "provider", "model", "prompt_hash", "prompt_tokens",
                  "completion_tokens", "latency_ms", "cached", "error")

INSERT: Final = (f"INSERT INTO ai_calls ({', '.join(COLUMNS)}) VALUES "
                 f"({', '.join(f'?{i + 1}' for i in range(len(COLUMNS)))})")

#: The most calls one listing returns.
MAX_LIMIT: Final = 500


def insert_params(row: dict[str, Any]) -> tuple[Any, ...]:
    """`INSERT`'s parameters from a call row (``cached`` as 0/1, a missing column as NULL)."""
    return tuple(int(bool(row.get(c))) if c == "cached" else row.get(c) for c in COLUMNS)


def list_query(*, run_id: str | None, model: str | None, limit: int) -> tuple[str, list[Any]]:
    """``(sql, params)``: the newest ``limit`` calls, of one run and/or one model."""
    where, params = ["1 = 1"], []  # type: tuple[list[str], list[Any]]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if model is not None:
        where.append("model = ?")
        params.append(model)
    params.append(limit)
    return (f"SELECT id, {', '.join(COLUMNS)} FROM ai_calls WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?", params)


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """A row as ``GET /ai/calls`` shows it: ISO time, ``cached`` a boolean."""
    return {**row, "at": iso(float(row["at"])), "cached": bool(row.get("cached"))}
