"""The local run index: one row per run, so listings need not open every run's database.

It is the embedded stand-in for the D1 index of the Cloudflare half. Each run's own database is the
source of truth; `reconcile` repairs the index after a crash between the two writes.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from ..durable_objects.migrate import migrate
from ..engine.errors import StorageError
from ..engine.events import CODE_REASON
from ..engine.status import RunStatus
from ..migrations.runs_index import COLUMNS, DELETE, UPSERT, list_query, upsert_params
from .sqlite import SqliteSql, UnreadableDatabase


class RunIndex:
    """Rows of (id, workflow, status, idempotency key, created, updated).

    `UnreadableDatabase` when the file is damaged (it fails SQLite's ``quick_check``) or not an
    index: the runtime then rebuilds it from the run files. Other refusals are `StorageError`.
    """

    def __init__(self, path: Path) -> None:
        self.sql = SqliteSql(path, label=path.name)
        try:
            self._open(path)
        except BaseException:
            self.sql.close()
            raise

    def _open(self, path: Path) -> None:
        checked = self.sql.exec("PRAGMA quick_check")
        if not checked or str(checked[0][0]) != "ok":
            raise UnreadableDatabase(f"{path.name}: damaged ({str(checked[0][0])[:120] if checked else 'no answer'})")
        tables = {r[0] for r in self.sql.exec("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables == {"runs"}:  # an index from before versioned schemas: derived data, rebuilt by reconcile
            self.sql.exec("DROP TABLE runs")
        try:
            migrate(self.sql, "index")  # the same schema as the Worker's D1 index
        except UnreadableDatabase:
            raise
        except StorageError as exc:
            if "not a flareflow" not in str(exc):  # a newer flareflow's index is not ours to rebuild
                raise
            raise UnreadableDatabase(f"{path.name}: not a flareflow index ({exc})") from None

    def upsert(self, row: dict[str, Any]) -> None:
        self.sql.exec(UPSERT, *upsert_params(row))

    def reserve(self, row: dict[str, Any]) -> str | None:
        """Insert a new run; if its idempotency key is taken, return the run id that holds it."""
        try:
            self.upsert(row)
        except sqlite3.IntegrityError:
            found = self.sql.exec("SELECT id FROM runs WHERE idempotency_key = ?", row["idempotency_key"])
            if found:
                return str(found[0][0])
            raise
        return None

    def by_key(self, key: str) -> str | None:
        found = self.sql.exec("SELECT id FROM runs WHERE idempotency_key = ?", key)
        return str(found[0][0]) if found else None

    def delete(self, run_id: str) -> None:
        for statement in DELETE:
            self.sql.exec(statement, run_id)

    def list(self, *, workflow: str | None = None, status: str | None = None,
             limit: int = 50, before: str | None = None,
             id_prefix: str | None = None) -> builtins.list[dict[str, Any]]:
        """Newest first; ``before`` is a run id cursor for the next page (the Worker's paging rule)."""
        query, params = list_query(workflow=workflow, status=status, cursor=before, limit=limit,
                                   id_prefix=id_prefix)
        return [dict(zip(COLUMNS, r, strict=True)) for r in self.sql.exec(query, *params)]

    def statuses(self) -> dict[str, str]:
        """Every run id with its indexed status."""
        return {str(r[0]): str(r[1]) for r in self.sql.exec("SELECT id, status FROM runs")}

    def ids(self, statuses: tuple[str, ...] | None = None) -> builtins.list[str]:
        if statuses is None:
            return [str(r[0]) for r in self.sql.exec("SELECT id FROM runs ORDER BY id")]
        marks = ", ".join("?" for _ in statuses)
        return [str(r[0]) for r in self.sql.exec(
            f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY id", *statuses)]

    def held(self) -> builtins.list[str]:
        """Ids of the waiting runs whose ``waiting_for`` says they are held for their code."""
        rows = self.sql.exec("SELECT id, waiting_for FROM runs WHERE status = ? AND waiting_for LIKE ? ORDER BY id",
                             str(RunStatus.WAITING), f'%"kind":"{CODE_REASON}"%')
        held = []
        for run_id, waits in rows:
            with contextlib.suppress(ValueError, TypeError):
                if any(isinstance(w, dict) and w.get("kind") == CODE_REASON for w in json.loads(waits)):
                    held.append(str(run_id))
        return held

    def close(self) -> None:
        self.sql.close()
