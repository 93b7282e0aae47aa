"""Driving a local run from the terminal: stream its events in order and answer its questions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..engine.errors import InvalidInput, RunFinished
from ..engine.events import TERMINAL_EVENTS
from ..local.runtime import LocalRuntime
from .common import write_json_line
from .render import LiveView


def parse_answer(text: str, schema: dict[str, Any] | None) -> Any:
    """Read what a person typed the way the question's schema expects it."""
    text = text.strip()
    kind = (schema or {}).get("type")
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("y", "yes", "true", "1"):
            return True
        if lowered in ("n", "no", "false", "0"):
            return False
    if kind == "string":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, str) else text
    try:
        return json.loads(text)
    except ValueError:
        return text


def hint_for(schema: dict[str, Any] | None) -> str:
    kind = (schema or {}).get("type")
    if "enum" in (schema or {}):
        return " [" + "/".join(str(v) for v in (schema or {})["enum"]) + "]"
    return {"boolean": " [y/n]", "integer": " (integer)", "number": " (number)",
            "object": " (JSON object)", "array": " (JSON array)"}.get(str(kind), "")


class Watcher:
    """Prints a run's events gaplessly (backlog first, then live) and prompts for answers."""

    def __init__(self, runtime: LocalRuntime, run_id: str, *, console: Console, json_mode: bool = False,
                 prompt: bool = True) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.console = console
        self.json_mode = json_mode
        self.prompt = prompt
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last = 0
        self.view = LiveView(console, run_id)
        self.stdin_open = True
        self._prompting: set[str] = set()
        self._asks: set[asyncio.Future[None]] = set()
        self._prompt_lock = asyncio.Lock()
        self.final: dict[str, Any] | None = None

    def _emit(self, event: dict[str, Any]) -> None:
        if self.json_mode:
            write_json_line(event)
        else:
            self.view.handle(event)

    def _take(self, event: dict[str, Any]) -> None:
        if event["seq"] <= self.last:
            return
        if event["seq"] != self.last + 1:  # never expected; re-read the gap from SQL
            for missed in self.runtime.get(self.run_id).events(after=self.last):
                if missed["seq"] < event["seq"]:
                    self._take(missed)
        self.last = event["seq"]
        self._emit(event)
        if event["type"] == "input.requested" and self.prompt:
            self._prompting.add(event["step"])
            self._spawn_ask(event)
        if event["type"] == "input.received":
            self._prompting.discard(event["step"])
        if event["type"] in TERMINAL_EVENTS:
            self.final = event

    async def run(self, *, start: bool = True) -> dict[str, Any] | None:
        """Stream until the run finishes; returns its terminal event."""
        unsubscribe = self.runtime.subscribe(self.run_id, self.queue.put_nowait)
        try:
            obj = self.runtime.get(self.run_id)
            for event in obj.events(after=self.last):
                self._take(event)
            if self.prompt:
                for wait in obj.open_waits():
                    if wait["kind"] == "input" and wait["step"] not in self._prompting:
                        self._prompting.add(wait["step"])
                        self._spawn_ask({"step": wait["step"], "prompt": wait["prompt"], "schema": wait["schema"]})
            if start:
                self.runtime.schedule(self.run_id)
            while self.final is None:
                self._take(await self.queue.get())
        finally:
            unsubscribe()
            self.view.close()
        return self.final

    def _spawn_ask(self, event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._ask(event))
        self._asks.add(task)
        task.add_done_callback(self._asks.discard)

    async def _ask(self, event: dict[str, Any]) -> None:
        async with self._prompt_lock:
            step = event["step"]
            schema = event.get("schema")
            while self.stdin_open and step in self._prompting and self.final is None:
                self.view.pause()
                # the live view already printed the question; NDJSON mode shows it only here, on stderr
                label = f"{event['prompt'] if self.json_mode else 'answer'}{hint_for(schema)}: "
                err = Console(stderr=True, soft_wrap=True, highlight=False) if self.json_mode else self.console
                try:
                    text = await asyncio.to_thread(err.input, f"    [magenta]↳[/magenta] {escape(label)}")
                except (EOFError, OSError):
                    self.stdin_open = False
                    err.print(f"\n    [dim]no terminal input; answer with: flareflow answer {self.run_id} "
                              f"'<json>' --step '{step}'[/dim]")
                    return
                if step not in self._prompting or self.final is not None:
                    return
                try:
                    await self.runtime.answer(self.run_id, parse_answer(text, schema), step)
                    return
                except InvalidInput as exc:
                    err.print(f"    [red]{exc}[/red]")
                except RunFinished:
                    return
