"""The `Sql` port on sqlite3: WAL journal, one connection per run object.

``sync="normal"`` (default) makes every commit durable across a process crash (the WAL is written
before COMMIT returns) but not across power loss. ``sync="full"`` fsyncs every commit the engine
marks durable (step completions, waits, run status) and skips it for step *starts*, whose loss
in a power cut is harmless: WAL frames are ordered, so a later fsync covers them too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..durable_objects.ports import Row
from ..engine.errors import StorageError

T = TypeVar("T")
SYNC_MODES = ("normal", "full", "off")


class SqliteSql:
    """A synchronous SQL adapter with atomic transactions and per-commit durability."""

    def __init__(self, path: Path | str, *, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        self.path = str(path)
        self.sync = sync
        self._in_tx = False
        fresh = not Path(self.path).exists()
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                        timeout=10.0)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            if fresh:  # an empty file has nothing to lose: switch to WAL without the rollback-journal fsyncs
                self.conn.execute("PRAGMA synchronous = OFF")
            mode = self._switch_to_wal()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StorageError(f"{self.path}: cannot switch SQLite to WAL mode (got {mode})")
            self._current = ""
            self._set_sync(sync)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: not a readable SQLite database ({exc})") from None

    def _switch_to_wal(self) -> Any:
        """``PRAGMA journal_mode = WAL``, retried: SQLite answers "locked" at once, ignoring the busy
        timeout, when another process switches the same new file at the same moment."""
        deadline = time.monotonic() + 10.0
        while True:
            try:
                return self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _set_sync(self, level: str) -> None:
        if level != self._current:
            self.conn.execute(f"PRAGMA synchronous = {level.upper()}")
            self._current = level

    def exec(self, sql: str, *params: Any) -> list[Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
                raise
            raise StorageError(f"{self.path}: {exc}") from None

    def transaction(self, fn: Callable[[], T], *, durable: bool = True) -> T:
        if self._in_tx:
            return fn()
        if self.sync == "full":
            self._set_sync("full" if durable else "normal")
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            result = fn()
        except BaseException:
            self._in_tx = False
            self.conn.execute("ROLLBACK")
            raise
        self._in_tx = False
        self.conn.execute("COMMIT")
        return result

    def data_version(self) -> int:
        """Changes when another connection commits to this database (cross-process deliveries)."""
        row = self.conn.execute("PRAGMA data_version").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()
