"""Ports between the run coordinator and its host (DESIGN.md): Sql, Alarm, Clock and Blobs (where
large payloads go: R2 on Cloudflare, files locally).

The coordinator never touches a host API directly. The local runtime adapts sqlite3 and asyncio;
the Durable Object shell adapts ``ctx.storage.sql`` and ``ctx.storage.setAlarm``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = Sequence[Any]


class Sql(Protocol):
    """Synchronous SQL over the object's own database."""

    def exec(self, sql: str, *params: Any) -> list[Row]:
        """Run one statement; return its rows as positional sequences."""

    def transaction(self, fn: Callable[[], T], *, durable: bool = True) -> T:
        """Run ``fn`` atomically. ``durable=False`` allows skipping the fsync (still crash-safe)."""


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
