"""The router's `Backend` on the embedded runtime: what ``flareflow serve --local`` answers with.

Streams are gapless: a subscriber registers for live events *before* reading the stored backlog,
then skips what it already sent. Each event is serialised once and the same text goes to every
client. Runs executed by another process are followed by polling their database instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from ..ai.config import CONFIG_KEY
from ..ai.frames import is_live
from ..engine.errors import RunNotFound
from ..engine.sockets import catch_up
from ..engine.status import TERMINAL
from ..migrations.runs_index import listed
from .ai import FileKv, IndexCallLog
from .runtime import LocalRuntime

POLL_SECONDS = 0.2
#: The seq `LocalBackend.stream` yields with a live frame (it has none: not in the event log).
LIVE_SEQ = -1
TEXT_CACHE = 20_000


class LocalBackend:
    """Implements `flareflow.worker.backend.Backend` over a `LocalRuntime`."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self._texts: OrderedDict[tuple[str, int], str] = OrderedDict()

    def _exact(self, run_id: str) -> str:
        if not self.runtime.db_path(run_id).exists():
            raise RunNotFound(f"no run '{run_id}'")
        return run_id

    def text(self, event: dict[str, Any]) -> str:
        """The event's JSON, serialised once however many clients receive it."""
        key = (event["run_id"], event["seq"])
        found = self._texts.get(key)
        if found is None:
            found = json.dumps(event, separators=(",", ":"))
            self._texts[key] = found
            if len(self._texts) > TEXT_CACHE:
                self._texts.popitem(last=False)
        return found

    def workflows(self) -> list[dict[str, Any]]:
        return self.runtime.registry.manifest()

    async def start(self, workflow: str, input: Any, idempotency_key: str | None,
                    respond_async: bool = False) -> tuple[dict[str, Any], bool]:
        obj, created = await self.runtime.start_or_get(workflow, input, idempotency_key=idempotency_key)
        return obj.describe(), created

    async def get(self, run_id: str) -> dict[str, Any]:
        return self.runtime.get(self._exact(run_id)).describe()

    async def list_runs(self, workflow: str | None, status: str | None, limit: int,
                        cursor: str | None, id_prefix: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        rows = self.runtime.index.list(workflow=workflow, status=status, limit=limit + 1, before=cursor,
                                       id_prefix=id_prefix)
        more = len(rows) > limit
        rows = [listed(row) for row in rows[:limit]]
        return rows, (rows[-1]["id"] if more and rows else None)

    async def events(self, run_id: str, after: int, limit: int | None) -> list[dict[str, Any]]:
        return self.runtime.get(self._exact(run_id)).events(after, limit)

    async def stream(self, run_id: str, after: int, follow: bool) -> AsyncIterator[tuple[int, str, str]]:
        run_id = self._exact(run_id)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        unsubscribe = self.runtime.subscribe(run_id, queue.put_nowait)
        unsubscribe_live = self.runtime.live.subscribe(run_id, queue.put_nowait) if follow else None
        last = after
        try:
            obj = self.runtime.get(run_id)
            batch, last, done = catch_up(obj.events(after=last), last)  # the Sockets port's one rule
            for event in batch:
                yield event["seq"], event["type"], self.text(event)
            if done or not follow or obj.status in TERMINAL:
                return
            while True:
                if self.runtime.owns(run_id):
                    event = await queue.get()
                    if is_live(event):  # a live frame (ai.token): no seq, not in the log
                        yield LIVE_SEQ, event["type"], json.dumps(event, separators=(",", ":"))
                        continue
                    source = [event] if event["seq"] == last + 1 else self.runtime.get(run_id).events(after=last)
                else:  # executed by another process: follow its database
                    await asyncio.sleep(POLL_SECONDS)
                    source = self.runtime.get(run_id).events(after=last)
                batch, last, done = catch_up(source, last)
                for event in batch:
                    yield event["seq"], event["type"], self.text(event)
                if done:
                    return
        finally:
            unsubscribe()
            if unsubscribe_live is not None:
                unsubscribe_live()

    async def send_event(self, run_id: str, event_type: str, payload: Any) -> None:
        await self.runtime.send_event(self._exact(run_id), event_type, payload)

    async def answer(self, run_id: str, value: Any, step: str | None) -> str:
        return await self.runtime.answer(self._exact(run_id), value, step)

    async def _command(self, run_id: str, op: str, reason: str | None = None) -> dict[str, Any]:
        obj, _ = await self.runtime.command(self._exact(run_id), op, reason)
        return obj.describe()

    async def cancel(self, run_id: str, reason: str) -> dict[str, Any]:
        return await self._command(run_id, "cancel", reason)

    async def pause(self, run_id: str, reason: str) -> dict[str, Any]:
        return await self._command(run_id, "pause", reason)

    async def resume(self, run_id: str) -> dict[str, Any]:
        return await self._command(run_id, "resume")

    async def retry(self, run_id: str) -> dict[str, Any]:
        return await self._command(run_id, "retry")

    async def restart(self, run_id: str, from_step: str | None) -> dict[str, Any]:
        return (await self.runtime.restart(self._exact(run_id), from_step)).describe()

    async def delete(self, run_id: str) -> None:
        await self.runtime.delete(self._exact(run_id))

    async def prune(self, older_than: float, statuses: tuple[str, ...], dry_run: bool,
                    limit: int) -> list[str]:
        return await self.runtime.prune(older_than, statuses, dry_run=dry_run, limit=limit)

    async def ai_calls(self, run_id: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
        return IndexCallLog(self.runtime.index).list(run_id, model, limit)

    async def finished(self, run_id: str, timeout: float) -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.runtime.until_finished(run_id), timeout)
        return self.runtime.get(run_id).describe()

    async def ai_config(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        kv = FileKv(self.runtime.state_dir / "kv")
        if document is not None:
            kv.write(CONFIG_KEY, json.dumps(document, separators=(",", ":")))
        text = kv.read(CONFIG_KEY)
        return None if text is None else dict(json.loads(text))
