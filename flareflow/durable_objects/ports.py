"""Ports between the run coordinator and its host (DESIGN.md): Sql, Alarm, Clock and Blobs (where
large payloads go: R2 on Cloudflare, files locally).

The coordinator never touches a host API directly. The local runtime adapts sqlite3 and asyncio;
the Durable Object shell adapts ``ctx.storage.sql`` and ``ctx.storage.setAlarm``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = Sequence[Any]

#: SQLite result names in an error's text that mean "the store refused", not "the SQL is wrong"
#: (workerd's ``ctx.storage.sql`` reports e.g. "database or disk is full: SQLITE_FULL").
_STORAGE_FAULT = re.compile(r"SQLITE_(FULL|IOERR|NOMEM|BUSY|LOCKED|CANTOPEN|READONLY|PROTOCOL|CORRUPT|NOTADB)\b"
                            r"|database or disk is full|disk I/O error")


def is_storage_fault_text(text: str) -> bool:
    """Whether an error message from a SQL host says the store refused the operation."""
    return _STORAGE_FAULT.search(text) is not None


class Sql(Protocol):
    """Synchronous SQL over the object's own database.

    A store that refuses an operation (disk or quota full, I/O error, cannot open) raises
    `flareflow.engine.errors.StorageError`, and a transaction that raises is rolled back whole;
    errors in the SQL itself (syntax, constraints) stay the driver's own.
    """

    def exec(self, sql: str, *params: Any) -> list[Row]:
        """Run one statement; return its rows as positional sequences."""

    def transaction(self, fn: Callable[[], T], *, durable: bool = True, site: str = "") -> T:
        """Run ``fn`` atomically. ``durable=False`` allows skipping the fsync (still crash-safe).

        ``site`` names the commit site (`flareflow.durable_objects.coordinator.COMMIT_SITES`); hosts
        ignore it, fault injectors (`flareflow.durable_objects.faults`) target it.
        """


class Alarm(Protocol):
    """One alarm per object; the coordinator keeps it at the earliest pending timer."""

    def set(self, at: float | None) -> None:
        """Fire ``alarm()`` at epoch second ``at``; ``None`` clears it."""


class Blobs(Protocol):
    """Where JSON payloads above the threshold live (R2 on Cloudflare, files locally).

    Reads are synchronous: a host whose store is asynchronous fetches what a run references before
    it reads the run (the Durable Object shell does, from R2).
    """

    def put(self, key: str, text: str) -> None:
        """Store ``text`` under ``key`` (content-addressed: the same key always holds the same text)."""

    def get(self, key: str) -> str:
        """The text under ``key``; `StorageError` if it is not available."""


class Clock(Protocol):
    """Injectable time, so tests can skip it instead of sleeping."""

    def now(self) -> float:
        """Epoch seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
