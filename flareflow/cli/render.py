"""The live terminal view of a run: a line per step, a spinner while something runs or waits.

On a terminal, rich animates the spinner; piped output gets the same lines without animation, so
logs and CI read cleanly.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from ..engine.durations import format_duration
from ..engine.events import TERMINAL_EVENTS
from ..engine.tracebacks import format_frame


def step_label(key: str, name: str, helpers: dict[str, str] | None = None) -> str:
    """``fetch`` for ``fetch#1``; ``fetch #2`` for repeats; a step of a `run.parallel` helper says
    what the helper is and which branch: ``fetch (summarise_source, branch 2)`` (``helpers``: scope ->
    the helper's name, from ``step.started``'s ``branch``; without it, ``fetch (branch 2)``)."""
    scope, _, tail = key.rpartition("/")
    occurrence = tail.rpartition("#")[2]
    label = name if occurrence in ("", "1") else f"{name} #{occurrence}"
    if scope:
        branch = scope.rsplit(".", 1)[-1]
        helper = (helpers or {}).get(scope)
        which = f"branch {int(branch) + 1}" if branch.isdigit() else scope
        label += f" [dim]({escape(helper)}, {which})[/dim]" if helper else f" [dim]({which})[/dim]"
    return label


def short_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_line(error: Any) -> str:
    """``Type: message`` of an error body (markup escaped)."""
    if not isinstance(error, dict):
        return escape(str(error))
    return f"{escape(str(error.get('type', '')))}: {escape(str(error.get('message', '')))}"


def frame_lines(error: Any, indent: str = "      ") -> list[str]:
    """The error's traceback, one ``at FILE:LINE in FUNCTION`` line per frame of the user's code; a
    `StepFailed` error's cause follows (``caused by ...`` and its frames)."""
    if not isinstance(error, dict):
        return []
    lines = [f"{indent}[dim]{escape(format_frame(frame))}[/dim]" for frame in error.get("traceback") or []
             if isinstance(frame, dict)]
    if error.get("traceback_truncated"):
        lines.insert(0, f"{indent}[dim]… {error['traceback_truncated']} outer frames not kept[/dim]")
    cause = error.get("cause")
    if isinstance(cause, dict):
        lines.append(f"{indent}caused by {error_line(cause)}")
        lines.extend(frame_lines(cause, indent))
    return lines


def log_lines(logs: Any, indent: str = "    ") -> list[str]:
    """What a step attempt printed and logged, a ``│``-prefixed line each (stderr and log records
    marked)."""
    lines = []
    for entry in logs or []:
        if not isinstance(entry, dict):
            continue
        stream = entry.get("stream")
        if stream == "log":
            label = f"[dim]{escape(str(entry.get('level', '')))} {escape(str(entry.get('logger', '')))}:[/dim] "
        elif stream == "stderr":
            label = "[dim]stderr:[/dim] "
        else:
            label = ""
        for i, text in enumerate(str(entry.get("text", "")).split("\n")):
            lines.append(f"{indent}[dim]│[/dim] {label if i == 0 else ''}{escape(text)}")
    return lines


def _until(iso: str | None) -> str:
    if not iso:
        return ""
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    left = (moment - dt.datetime.now(dt.UTC)).total_seconds()
    local = moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"until {local}" + (f" (in {format_duration(left)})" if left > 0 else "")


class LiveView:
    """Turns wire events into terminal lines, each after ``prefix`` (which run, when several share
    the terminal); ``spinner=False`` never animates (rich shows one live display at a time)."""

    def __init__(self, console: Console, run_id: str, *, show_hints: bool = True, prefix: str = "",
                 spinner: bool = True) -> None:
        self.console = console
        self.run_id = run_id
        self.show_hints = show_hints
        self.prefix = prefix
        self.spinner = spinner
        self.helpers: dict[str, str] = {}  # branch scope -> its helper's name (step.started's branch)
        self.running: dict[str, str] = {}
        self.streamed: set[str] = set()  # steps whose output was shown live (step.output): not again at their end
        self.waiting = ""
        self.started = time.monotonic()
        self.status: Status | None = None

    # -- spinner ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.running:
            text = "running " + ", ".join(self.running.values())
        elif self.waiting:
            text = self.waiting
        else:
            text = ""
        if not self.console.is_terminal or not self.spinner:
            return
        if text and self.status is None:
            self.status = self.console.status(text, spinner="dots")
            self.status.start()
        elif text and self.status is not None:
            self.status.update(text)
        elif not text:
            self.pause()

    def pause(self) -> None:
        """Stop the spinner (before prompting)."""
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self.pause()

    # -- events ----------------------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        out = self._print
        if kind == "run.started":
            origin = event.get("restarted_from")
            out(f"[bold]▶ {escape(event['workflow'])}[/bold]  run [cyan]{event['run_id']}[/cyan]"
                + (f"  input {escape(short_json(event['input']))}" if event.get("input") is not None else "")
                + (f"  [dim]restarted from {origin['run_id']} "
                   + (f"at {escape(str(origin['step']))}" if origin.get("step") else "from the beginning")
                   + "[/dim]" if isinstance(origin, dict) else ""))
        elif kind == "run.retried":
            out(f"  [yellow]↻[/yellow] retried: {escape(', '.join(event.get('steps') or [])) or 'the run'} "
                "[dim](completed steps are not run again)[/dim]")
        elif kind == "step.started":
            self.waiting = ""
            if event.get("branch"):
                self.helpers[event["step"].rpartition("/")[0]] = str(event["branch"])
            self.running[event["step"]] = self._label(event)
        elif kind == "step.completed":
            self.running.pop(event["step"], None)
            attempt = f" [dim](attempt {event['attempt']})[/dim]" if event["attempt"] > 1 else ""
            out(f"  [green]✓[/green] {self._label(event)}  "
                f"[dim]{format_duration(event['duration_ms'] / 1000)}[/dim]{attempt}")
            self._lines(self._logs(event))
        elif kind == "step.output":  # a running step's lines as they come, each under its step's name
            self.streamed.add(event["step"])
            self._lines(log_lines(event.get("lines"), f"  [dim]{self._label(event)}[/dim] "))
        elif kind == "step.retrying":
            self.running.pop(event["step"], None)
            err = event["error"]
            out(f"  [yellow]↻[/yellow] {self._label(event)}  attempt {event['attempt']} "
                f"failed: {error_line(err)} · retry in {format_duration(event['delay'])}")
            self._lines(frame_lines(err) + self._logs(event))
        elif kind == "step.failed":
            self.running.pop(event["step"], None)
            err = event["error"]
            out(f"  [red]✗[/red] {self._label(event)}  {error_line(err)}")
            self._lines(frame_lines(err) + self._logs(event))
        elif kind == "run.waiting":
            self._waiting(event)
        elif kind == "event.received":
            out(f"  [blue]⇢[/blue] event [bold]{escape(event['event_type'])}[/bold] received "
                f"{escape(short_json(event['payload']))}")
        elif kind == "input.received":
            out(f"  [blue]⇢[/blue] answer {escape(short_json(event['value']))}")
        elif kind == "input.requested":
            out(f"  [magenta]?[/magenta] {escape(event['prompt'])}")
        elif kind in TERMINAL_EVENTS:
            self.running.clear()
            self.waiting = ""
            self.pause()
            self._finished(event)
        self._refresh()

    def _logs(self, event: dict[str, Any]) -> list[str]:
        """An attempt's captured lines at its end, unless they were already shown live (step.output)."""
        if event["step"] in self.streamed:
            self.streamed.discard(event["step"])  # a retry streams its own attempt again
            return []
        return log_lines(event.get("logs"))

    def _label(self, event: dict[str, Any]) -> str:
        if "task" in event:  # a task graph's step: its task's name says which; branches are the graph's own
            return escape(step_label(event["step"].rpartition("/")[2], event["name"]))
        return step_label(event["step"], event["name"], self.helpers)

    def _print(self, line: str) -> None:
        self.console.print(self.prefix + line)

    def _lines(self, lines: list[str]) -> None:
        for line in lines:
            self._print(line)

    def _waiting(self, event: dict[str, Any]) -> None:
        reason = event["reason"]
        until = _until(event.get("until"))
        label = escape(event.get("name", ""))
        if reason == "sleep":
            self._print(f"  [blue]⏸[/blue] {label}: sleeping {until}")
            self.waiting = f"sleeping ({label}) {until}"
        elif reason == "event":
            etype = escape(event.get("event_type", ""))
            limit = f" {until}" if until else ""
            self._print(f"  [blue]⏸[/blue] waiting for event [bold]{etype}[/bold]{limit}")
            if self.show_hints:
                self._print(f"    [dim]send it with: flareflow send-event {self.run_id} {etype} "
                                   "'{...}'[/dim]")
            self.waiting = f"waiting for event {etype}"
        elif reason == "code":
            self._print(f"  [yellow]⏸ held[/yellow]: {escape(str(event.get('message', '')))}")
            if self.show_hints:
                self._print("    [dim]it continues once the code is back: `flareflow resume` and `serve --local` "
                            "re-check when the workflow files change; `flareflow check` shows divergences[/dim]")
            self.waiting = "held: waiting for its code"
        else:
            self.waiting = "waiting for an answer"

    def _finished(self, event: dict[str, Any]) -> None:
        took = format_duration(time.monotonic() - self.started)
        if event["type"] == "run.completed":
            if self.prefix:  # runs share the terminal: the output on the line, not pretty-printed
                self._print(f"[bold green]✔ completed[/bold green] in {took}: "
                            f"{escape(short_json(event['output'], 200))}")
            else:
                self._print(f"[bold green]✔ completed[/bold green] in {took}")
                self.console.print_json(json.dumps(event["output"]))
        elif event["type"] == "run.failed":
            err = event["error"] or {}
            self._print(f"[bold red]✘ failed[/bold red] after {took}: {error_line(err)}")
            # a failed step's own frames were shown with it: here only where the workflow was
            self._lines(frame_lines({k: v for k, v in err.items() if k != "cause"}, "    "))
        else:
            self._print(f"[bold yellow]■ cancelled[/bold yellow] ({escape(str(event.get('reason')))})")


def waits_phrase(waits: list[dict[str, Any]] | None) -> str:
    """What a waiting run waits for, in a few words (``runs list``): ``event approval``,
    ``answer: Send the welcome mail?``, ``timer until 14:05:09``, ``code: unknown workflow ...`` (held);
    several joined by ``; ``."""
    parts = []
    for wait in waits or []:
        kind, until = wait.get("kind"), _until(wait.get("until"))
        if kind == "event":
            parts.append(f"event {wait.get('event_type') or wait.get('name')}" + (f" ({until})" if until else ""))
        elif kind == "input":
            parts.append(f"answer: {wait.get('prompt') or wait.get('name')}")
        elif kind == "code":
            parts.append(f"code: {wait.get('message') or wait.get('name')}")
        else:
            parts.append(f"timer {until}".rstrip())
    return "; ".join(parts)


def schedule_summary(cron_text: str | None, written: str | None = None, tz: str | None = None,
                     now: float | None = None) -> str:
    """``0 9 * * 1 (every Monday at 9am) · next 2026-12-07 09:00, 2026-12-14 09:00, 2026-12-21 09:00 UTC``:
    a schedule as the cron expression the hosts fire, what the author wrote, and its next three fire times."""
    from ..engine.cron import CronError, next_fires, parse_cron

    if not cron_text:
        return ""
    said = f" ({written}{', ' + tz if tz else ''})" if (written and written != cron_text) or tz else ""
    try:
        cron = parse_cron(cron_text)
    except CronError as exc:
        return f"{cron_text}{said} · invalid: {exc}"
    fires = next_fires(cron, time.time() if now is None else now, 3)
    stamps = ", ".join(dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M") for t in fires)
    return f"{cron_text}{said} · next {stamps} UTC"


def step_shown(key: str, name: str) -> str:
    """What ``runs show`` calls a step: its key (``charge#1``, which ``restart --from`` takes), except a domain
    call's (``Inventory.check@<hash>#1``), which is shown by its path as the issue of domains asks:
    ``Inventory.check`` (``Inventory.check #2`` for a repeat of the very same call)."""
    scope, _, tail = key.rpartition("/")
    ident, _, occurrence = tail.rpartition("#")
    if "@" not in ident:
        return key
    label = name if occurrence in ("", "1") else f"{name} #{occurrence}"
    return f"{scope}/{label}" if scope else label
