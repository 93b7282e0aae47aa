"""Streamed AI text at the terminal (``ai.token`` frames, `flareflow.ai.frames`): written as it
arrives, on a line of its own under the step, which ends before the next event's line. Shared by
``flareflow run`` locally (`flareflow.cli.watch.Watcher`) and with ``--url`` (`flareflow.cli.remote`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ..ai.frames import TOKEN
from .common import write_json_line
from .render import LiveView


class TokenPrinter:
    """Writes live frames; `end_line` before anything else is printed."""

    def __init__(self, console: Console, view: LiveView, *, json_mode: bool, label: str = "") -> None:
        self.console = console
        self.view = view
        self.json_mode = json_mode
        self.label = label
        self.mid_line = False
        #: The text shown per step, to tell at its ``step.completed`` whether the start came before we did.
        self.shown: dict[str, str] = {}

    def frame(self, frame: dict[str, Any]) -> None:
        if self.json_mode:
            write_json_line(frame)
            return
        if frame.get("type") != TOKEN or not isinstance(frame.get("text"), str):
            return
        from .watch import end_prompt_line  # watch imports this module

        self.view.pause()
        text = frame["text"]
        if not self.mid_line:
            end_prompt_line(self.console)
            self.console.file.write(f"{self.label}    ")
            text = text.lstrip()  # a line's first piece (the ones before it may have come before we did)
        self.console.file.write(self._indented(text))
        self.console.file.flush()
        self.mid_line = True
        step = str(frame.get("step"))
        self.shown[step] = self.shown.get(step, "") + frame["text"]

    def _indented(self, text: str) -> str:
        """A multi-line answer stays under its step: each new line starts at the text's indent."""
        return text.replace("\n", f"\n{self.label}    ")

    def end_line(self, event: dict[str, Any] | None = None) -> None:
        """End the streamed text's line before ``event`` is shown; when ``event`` completes a streamed
        step whose start was sent before this terminal joined (``flareflow run --url`` connects once
        the run has started), the whole answer follows, so the text shown is never cut."""
        if self.mid_line:
            self.mid_line = False
            if not self.json_mode:
                self.console.file.write("\n")
        if event is None or event.get("type") != "step.completed":
            return
        shown = self.shown.pop(str(event.get("step")), None)
        result = event.get("result")
        value = result.get("value") if isinstance(result, dict) else None
        if shown is None or self.json_mode or not isinstance(value, str) or shown.strip() == value.strip():
            return
        self.console.file.write(f"{self.label}    (the answer began before this terminal joined; in full:)\n"
                                f"{self.label}    {self._indented(value.strip())}\n")
        self.console.file.flush()
