"""Driving a local run from the terminal: stream its events in order and answer its questions.

Questions are read from stdin by `read_line` on the event loop (no thread), so a prompt never keeps
the process alive: when the run finishes, is answered from another terminal or Ctrl-C detaches,
the prompt is dropped and the command exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..ai.frames import is_live
from ..engine.errors import InvalidInput, RunFinished, StorageError
from ..engine.events import TERMINAL_EVENTS
from ..local.runtime import LocalRuntime
from .common import write_json_line
from .render import LiveView
from .tokens import TokenPrinter


class NotJson(ValueError):
    """What was typed at a prompt is not JSON, and the question wants a JSON value."""


def parse_answer(text: str, schema: dict[str, Any] | None) -> Any:
    """Read what a person typed the way the question's schema expects it: ``y``/``n`` for a boolean,
    JSON, else plain text -- except that an object, array or number must be JSON (`NotJson`)."""
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
    except ValueError as exc:
        if kind not in ("object", "array", "number", "integer"):
            return text  # the schema's own check says what it wants ("expected boolean")
        raise NotJson(f"not valid JSON ({exc}): {text[:60]}") from None


class LineReader:
    """Lines from a file descriptor (stdin), read on the event loop.

    A terminal or a pipe is watched with ``loop.add_reader``, so waiting for a line holds no thread
    and is cancelled like any other await; a regular file or ``/dev/null`` cannot be watched, but
    reading one never blocks either.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""
        self._eof = False

    async def readline(self) -> str:
        """The next line without its newline; `EOFError` at the end of input."""
        while b"\n" not in self._buffer:
            if self._eof:
                if not self._buffer:
                    raise EOFError
                rest, self._buffer = self._buffer, b""
                return rest.decode("utf-8", "replace")
            chunk = await self._read()
            self._eof = not chunk
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace").rstrip("\r")

    async def _read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            try:
                loop.add_reader(self.fd, _wake, ready)
            except (OSError, ValueError):  # not pollable (a regular file, /dev/null): never blocks
                return _read_or_eof(self.fd)
            try:
                await ready
            finally:
                loop.remove_reader(self.fd)
            try:
                return _read_or_eof(self.fd)
            except BlockingIOError:  # woken for nothing: wait again
                continue


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _read_or_eof(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        raise
    except OSError:  # the terminal went away (EIO): the end of input
        return b""


_stdin: LineReader | None = None
#: The prompt `read_line` waits at (its console, its text, the run and step that ask), if any, and
#: whether it is the terminal's last line now (output in between moves it up: `show_prompt_again`).
_waiting_at: tuple[Console, str, str, str] | None = None
_prompt_open = False
#: One prompt at a time on this terminal, whichever run asks (per event loop).
_prompt_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


async def read_line(console: Console, prompt: str, run_id: str = "", step: str = "") -> str:
    """Print ``prompt`` (rich markup) on ``console`` and read one line from stdin for the question at
    ``step`` of ``run_id``; `EOFError` when stdin is closed or not readable."""
    global _stdin, _prompt_open, _waiting_at
    if _stdin is None:
        try:
            _stdin = LineReader(sys.stdin.fileno())
        except (AttributeError, OSError, ValueError):
            raise EOFError from None
    console.print(prompt, end="")
    console.file.flush()
    _waiting_at, _prompt_open = (console, prompt, run_id, step), True
    try:
        return await _stdin.readline()
    finally:
        _waiting_at, _prompt_open = None, False


def end_prompt_line(console: Console) -> None:
    """Before printing anything else while a prompt waits: end the prompt's line, so the output does
    not run into it."""
    global _prompt_open
    if _prompt_open:
        console.print()
        _prompt_open = False


def drop_prompt(run_id: str, step: str) -> None:
    """The question at ``step`` of ``run_id`` was answered elsewhere: its prompt is not shown again
    (the task reading it is cancelled by the caller)."""
    global _waiting_at
    if _waiting_at is not None and _waiting_at[2:] == (run_id, step):
        _waiting_at = None


def show_prompt_again(run_id: str, finished: bool) -> None:
    """After output of ``run_id`` (``finished``: its last): the prompt still waiting goes back on the
    last line -- unless it is that finished run's own, which is dropped now."""
    global _prompt_open
    if _waiting_at is None or _prompt_open or (finished and _waiting_at[2] == run_id):
        return
    console, prompt = _waiting_at[:2]
    console.print(prompt, end="")
    console.file.flush()
    _prompt_open = True


def prompt_lock() -> asyncio.Lock:
    """The lock every prompt of this process takes, so questions of several runs never interleave."""
    global _prompt_lock
    loop = asyncio.get_running_loop()
    if _prompt_lock is None or _prompt_lock[0] is not loop:
        _prompt_lock = (loop, asyncio.Lock())
    return _prompt_lock[1]


def hint_for(schema: dict[str, Any] | None) -> str:
    kind = (schema or {}).get("type")
    if "enum" in (schema or {}):
        return " [" + "/".join(str(v) for v in (schema or {})["enum"]) + "]"
    return {"boolean": " [y/n]", "integer": " (integer)", "number": " (number)",
            "object": " (JSON object)", "array": " (JSON array)"}.get(str(kind), "")


class Watcher:
    """Prints a run's events gaplessly (backlog first, then live) and prompts for answers.

    A run this process executes is streamed as its events commit; one executed by another process
    (the background worker, another terminal) is followed by reading its database every
    `POLL_SECONDS`, and answers typed here go to its inbox. ``label`` prefixes every line (when
    several runs share the terminal); ``spinner=False`` leaves out the animation (only one may run).
    """

    POLL_SECONDS = 0.25

    def __init__(self, runtime: LocalRuntime, run_id: str, *, console: Console, json_mode: bool = False,
                 prompt: bool = True, label: str = "", spinner: bool = True) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.console = console
        self.json_mode = json_mode
        self.prompt = prompt
        self.label = label
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last = 0
        self.view = LiveView(console, run_id, prefix=label, spinner=spinner)
        self.stdin_open = True
        self._prompting: set[str] = set()
        self._asks: dict[str, asyncio.Future[None]] = {}  # step -> the task asking it here
        self.final: dict[str, Any] | None = None
        #: ``ai.token`` frames (a streamed answer): the text as the model writes it (NDJSON: the frames)
        self.tokens = TokenPrinter(console, self.view, json_mode=json_mode, label=label)

    def _emit(self, event: dict[str, Any]) -> None:
        if self.json_mode:
            write_json_line(event)
            return
        end_prompt_line(self.console)
        self.view.handle(event)
        show_prompt_again(self.run_id, event["type"] in TERMINAL_EVENTS)

    def _take(self, event: dict[str, Any]) -> None:
        if is_live(event):  # a streamed answer's piece: shown as it comes, never part of the event order
            self.tokens.frame(event)
            return
        self.tokens.end_line(event)  # the streamed text ends its line before the next event's
        if event["seq"] <= self.last:
            return
        if event["seq"] != self.last + 1:  # never expected; re-read the gap from SQL
            for missed in self.runtime.get(self.run_id).events(after=self.last):
                if missed["seq"] < event["seq"]:
                    self._take(missed)
        self.last = event["seq"]
        if event["type"] == "input.received":  # answered (maybe elsewhere): stop asking it here
            self._prompting.discard(event["step"])
            drop_prompt(self.run_id, event["step"])
            asking = self._asks.pop(event["step"], None)
            if asking is not None:
                asking.cancel()
        self._emit(event)
        if event["type"] == "input.requested" and self.prompt:
            self._prompting.add(event["step"])
            self._spawn_ask(event)
        # the latest event decides: in a retried run's log a terminal event is followed by run.retried
        self.final = event if event["type"] in TERMINAL_EVENTS else None

    async def run(self, *, start: bool = True) -> dict[str, Any] | None:
        """Stream until the run finishes; returns its terminal event. Open prompts are dropped then."""
        unsubscribe = self.runtime.subscribe(self.run_id, self.queue.put_nowait)
        unsubscribe_live = self.runtime.live.subscribe(self.run_id, self.queue.put_nowait)
        poller = None
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
            elif not self.runtime.owns(self.run_id):
                poller = asyncio.ensure_future(self._poll())
            while self.final is None:
                self._take(await self.queue.get())
        finally:
            unsubscribe()
            unsubscribe_live()
            if poller is not None:
                poller.cancel()
            for task in list(self._asks.values()):
                task.cancel()
            self.view.close()
        return self.final

    async def _poll(self) -> None:
        """Read the events another process commits to the run (it owns it; we only read)."""
        while True:
            await asyncio.sleep(self.POLL_SECONDS)
            with contextlib.suppress(StorageError):
                for event in self.runtime.get(self.run_id).events(after=self.last):
                    self.queue.put_nowait(event)

    def _spawn_ask(self, event: dict[str, Any]) -> None:
        step = event["step"]
        task = asyncio.ensure_future(self._ask(event))
        self._asks[step] = task
        task.add_done_callback(lambda done: self._asks.pop(step) if self._asks.get(step) is done else None)

    async def _ask(self, event: dict[str, Any]) -> None:
        async with prompt_lock():
            step = event["step"]
            schema = event.get("schema")
            while self.stdin_open and step in self._prompting and self.final is None:
                self.view.pause()
                # the live view already printed the question; NDJSON mode shows it only here, on stderr
                label = f"{event['prompt'] if self.json_mode else 'answer'}{hint_for(schema)}: "
                err = Console(stderr=True, soft_wrap=True, highlight=False) if self.json_mode else self.console
                try:
                    text = await read_line(err, f"{self.label}    [magenta]↳[/magenta] {escape(label)}",
                                           self.run_id, step)
                except EOFError:
                    self.stdin_open = False
                    err.print(f"\n    [dim]no terminal input; answer with: flareflow answer {self.run_id} "
                              f"'<json>' --step '{step}'[/dim]")
                    return
                if step not in self._prompting or self.final is not None:
                    return
                try:
                    await self.runtime.answer(self.run_id, parse_answer(text, schema), step)
                    return
                except (InvalidInput, NotJson) as exc:
                    err.print(f"{self.label}    [red]{escape(str(exc))}[/red]")
                except RunFinished:
                    return
