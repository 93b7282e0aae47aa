"""CLI commands against a server (``--url`` / ``$FLAREFLOW_URL``): the same views as locally."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..client import ApiError, Client
from ..engine.events import TERMINAL_EVENTS
from .common import write_json_line
from .render import LiveView
from .tokens import TokenPrinter
from .watch import (
    NotJson,
    drop_prompt,
    end_prompt_line,
    hint_for,
    parse_answer,
    prompt_lock,
    read_line,
    show_prompt_again,
)


async def remote_run(client: Client, name: str, value: Any, *, console: Console, json_mode: bool,
                     idempotency_key: str | None, detach: bool) -> int:
    """Start a run on the server and stream it; answer its questions at this terminal."""
    run = await client.start(name, value, idempotency_key=idempotency_key)
    if detach:
        console.print(run["id"])
        return 0
    return await follow(client, run["id"], console=console, json_mode=json_mode)


async def follow(client: Client, run_id: str, *, console: Console, json_mode: bool, prompt: bool = True,
                 after: int = 0) -> int:
    """Print the run's events after seq ``after`` live (reconnecting as needed); exit code 0 when it
    completes."""
    view = LiveView(console, run_id)
    tokens = TokenPrinter(console, view, json_mode=json_mode)  # a streamed AI answer's text
    asking: dict[str, asyncio.Task[None]] = {}
    stdin_open = [True]
    final: dict[str, Any] | None = None

    async def ask(event: dict[str, Any]) -> None:
        schema = event.get("schema")
        out = Console(stderr=True, soft_wrap=True, highlight=False) if json_mode else console
        while stdin_open[0]:
            view.pause()
            try:
                label = escape(f"{event['prompt'] if json_mode else 'answer'}{hint_for(schema)}: ")
                async with prompt_lock():
                    text = await read_line(out, f"    [magenta]↳[/magenta] {label}", run_id, event["step"])
            except EOFError:
                stdin_open[0] = False
                out.print(f"\n    [dim]no terminal input; answer with: flareflow answer {run_id} '<json>' "
                          f"--url ...[/dim]")
                return
            try:
                await client.answer(run_id, parse_answer(text, schema), event["step"])
                return
            except NotJson as exc:
                out.print(f"    [red]{escape(str(exc))}[/red]")
            except ApiError as exc:
                if exc.status == 409:
                    return
                out.print(f"    [red]{exc.message}[/red]")

    try:
        async for event in client.events(run_id, after=after, live=True):
            if "seq" not in event:  # a live frame: streamed AI text
                tokens.frame(event)
                continue
            tokens.end_line(event)
            if event["type"] == "input.received" and event["step"] in asking:  # answered: stop asking
                drop_prompt(run_id, event["step"])
                asking.pop(event["step"]).cancel()
            if json_mode:
                write_json_line(event)
            else:
                end_prompt_line(console)
                view.handle(event)
                show_prompt_again(run_id, event["type"] in TERMINAL_EVENTS)
            if event["type"] == "input.requested" and prompt:
                asking[event["step"]] = asyncio.ensure_future(ask(event))
            if event["type"] in TERMINAL_EVENTS:
                final = event
    finally:
        view.close()
        for task in asking.values():
            task.cancel()
    return 0 if final is not None and final["type"] == "run.completed" else 1
