"""The `Sql` port on sqlite3: WAL journal, one connection per run object.

``sync="normal"`` (default) makes every commit durable across a process crash (the WAL is written
before COMMIT returns) but not across power loss. ``sync="full"`` fsyncs every commit the engine
marks durable (step completions, waits, run status) and skips it for step *starts*, whose loss
in a power cut is harmless: WAL frames are ordered, so a later fsync covers them too.

Errors: a store that refuses an operation (disk full, I/O error, cannot open, read-only, busy
past the timeout) raises `StorageError`, and so does an unreadable file; a failed COMMIT is rolled
back, so nothing half-committed stays visible. Errors in the SQL itself (syntax, constraints)
stay sqlite3's. Messages name the database by its ``label`` (a path relative to the state
directory), never by its absolute path.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..durable_objects.ports import Row
from ..engine.errors import StorageError

T = TypeVar("T")
SYNC_MODES = ("normal", "full", "off")
#: Primary SQLite result codes meaning "the store refused", not "the SQL is wrong": BUSY, LOCKED,
#: NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
STORAGE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


class UnreadableDatabase(StorageError):
    """The file is not a (readable) SQLite database, or not one of ours: damaged, not a transient refusal."""


def is_storage_fault(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is the store refusing an operation (disk full, I/O, ...) or an unreadable file."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    if not isinstance(exc, sqlite3.OperationalError):
        return isinstance(exc, sqlite3.DatabaseError)  # corrupt, not a database, ...
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in STORAGE_CODES
    text = str(exc)
    return any(part in text for part in ("disk is full", "disk I/O", "unable to open", "readonly",
                                         "locked", "out of memory"))


class SqliteSql:
    """A synchronous SQL adapter with atomic transactions and per-commit durability."""

    def __init__(self, path: Path | str, *, sync: str = "normal", label: str | None = None) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        self.path = str(path)
        self.label = label if label is not None else Path(self.path).name
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
                self.conn.close()
                raise StorageError(f"{self.label}: cannot switch SQLite to WAL mode (got {mode})")
            self._current = ""
            self._set_sync(sync)
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self.conn.close()
            if isinstance(exc, sqlite3.OperationalError) and is_storage_fault(exc):
                raise StorageError(f"{self.label}: cannot open ({exc})") from None
            raise UnreadableDatabase(f"{self.label}: not a readable SQLite database ({exc})") from None

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

    def _fault(self, exc: sqlite3.Error) -> StorageError:
        if isinstance(exc, sqlite3.OperationalError):
            return StorageError(f"{self.label}: {exc}")
        return UnreadableDatabase(f"{self.label}: {exc}")  # malformed, not a database

    def exec(self, sql: str, *params: Any) -> list[Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if not is_storage_fault(exc):
                raise
            raise self._fault(exc) from None

    def transaction(self, fn: Callable[[], T], *, durable: bool = True, site: str = "") -> T:
        """``fn`` atomically; ``site`` names the commit site (unused here; fault injectors read it)."""
        if self._in_tx:
            return fn()
        try:
            if self.sync == "full":
                self._set_sync("full" if durable else "normal")
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if not is_storage_fault(exc):
                raise
            raise self._fault(exc) from None
        self._in_tx = True
        try:
            result = fn()
        except BaseException:
            self._in_tx = False
            self._rollback()
            raise
        self._in_tx = False
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()  # SQLite may keep the transaction open after a failed COMMIT (BUSY)
            if not is_storage_fault(exc):
                raise
            raise self._fault(exc) from None
        return result

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite rolls back by itself on FULL and IOERR)."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def data_version(self) -> int:
        """Changes when another connection commits to this database (cross-process deliveries)."""
        try:
            row = self.conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            if not is_storage_fault(exc):
                raise
            raise self._fault(exc) from None
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()
