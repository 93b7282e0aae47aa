"""What a loaded task graph is: its JSON definition, where it came from, and the vocabulary of its format.

A definition stays the plain JSON value the user wrote (the validator checks it, the compiler reads
it), so what the Worker receives at build time is exactly that JSON. ``lines`` maps a JSON path
(``tasks[3].depends_on[0]``) to the line of the source file it was written on, when the loader knew.
Standard library only (and `flareflow.engine.durations`, which is too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from ..engine.durations import parse_duration

#: Every task type; the fields each takes besides the common ones; which of them are required.
TASK_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "shell": (("command",), ("cwd", "environment", "live_output")),
    "http": (("url",), ("method", "headers", "body", "expected_status", "response")),
    "python": (("function",), ("inputs",)),
    "sleep": (("duration",), ()),
    "wait_event": (("event",), ()),
    "input": (("prompt",), ("schema",)),
    "conditional": (("condition", "then"), ("else",)),
    "parallel": (("tasks",), ("wait_for",)),
    "loop": (("items", "then"), ("item", "parallel", "stop_on_failure")),
    "workflow": (("workflow",), ("input",)),
    "database": ((), ("query", "migration", "transaction", "params", "connection", "binding")),
    "docker": (("image",), ("action", "context", "dockerfile", "command", "environment", "volumes", "cwd")),
    "data_processor": (("input", "processor", "output"), ()),
}
#: Fields every task may have.
COMMON_FIELDS: Final = ("id", "name", "type", "description", "depends_on", "when", "continue_on_failure",
                        "retry", "timeout", "on_failure")
#: Top-level fields of a definition.
GRAPH_FIELDS: Final = ("$schema", "name", "version", "description", "trigger", "inputs", "env", "tasks",
                       "on_failure", "local_only")
TRIGGER_TYPES: Final = ("manual", "schedule", "event", "webhook")
#: Types that need the machine flareflow runs on (processes, files); the Cloudflare build refuses them.
LOCAL_ONLY: Final = frozenset({"shell", "docker", "data_processor"})
#: What ``${tasks.ID.FIELD}`` may read, by the task's type (the record the compiler settles a task as):
#: every task has `REF_FIELDS`; a type adds what its record holds beside them. Under a field (``result``'s
#: own keys, ``error.message``) anything goes: that is the task's data, not the format.
REF_FIELDS: Final = ("status", "result", "error", "reason", "message")
TYPE_REF_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "shell": ("exit_code", "stdout", "stderr", "duration_s"),
    "docker": ("exit_code", "stdout", "stderr", "duration_s"),
    "http": ("status_code",),
    "loop": ("items",),
    "conditional": ("branch",),  # and the fields of the branch that ran
}
#: Roots a reference may start from (besides loop variables in scope).
ROOTS: Final = ("env", "input", "tasks", "trigger", "run")
#: What a task ends as.
COMPLETED: Final = "completed"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"


@dataclass
class Graph:
    """One definition: its JSON, its file (as shown in messages) and line numbers by JSON path."""

    definition: dict[str, Any]
    source: str
    lines: dict[str, int] = field(default_factory=dict)
    #: Files the build embeds for the Worker (which has no project folder): migration folder ->
    #: ``[[file name, SQL], ...]`` in order.
    files: dict[str, list[list[str]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.definition.get("name", ""))

    def where(self, path: str) -> str:
        """``file:line`` of ``path`` (the nearest enclosing node the loader knew a line for)."""
        probe = path
        while True:
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}"
            if not probe:
                return self.source
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""

    def to_json(self) -> dict[str, Any]:
        """What the build ships to the Worker: the definition, its source and its line map."""
        return {"definition": self.definition, "source": self.source, "lines": self.lines, "files": self.files}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Graph:
        return cls(dict(data["definition"]), str(data["source"]), dict(data.get("lines") or {}),
                   dict(data.get("files") or {}))


@dataclass(frozen=True)
class GraphError:
    """One located problem: ``file:line path: message``."""

    where: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.where} {self.path}: {self.message}" if self.path else f"{self.where}: {self.message}"


def child(path: str, key: str | int) -> str:
    """The JSON path of a member: ``tasks[3]``, ``tasks[3].depends_on``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN.match(key):  # a key no one would type bare: quoted, so a message stays one readable line
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def is_local_only(task: dict[str, Any]) -> bool:
    """Whether a task needs the local machine: a local-only type, or a database task with a
    file/URL ``connection`` (on Cloudflare a database task uses a D1 binding)."""
    kind = task.get("type")
    return kind in LOCAL_ONLY or (kind == "database" and task.get("connection") is not None)


def kind_of(value: Any) -> str:
    """A JSON value's kind as messages say it ("a string", "an object")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def timeout_seconds(value: Any, kind: Any) -> float:
    """A task's ``timeout`` in seconds: a number is in the type's unit (seconds; ``http``: milliseconds), a
    string a duration with its unit (``"10s"``, ``"5 minutes"``, ``"250ms"``). Anything else, a limit of
    zero or less, or (for ``http``) a string that is a bare number, whose unit a reader could not tell,
    is a ValueError saying what is accepted (the validator's message for the field)."""
    http = kind == "http"
    unit = "milliseconds" if http else "seconds"
    accepted = f'a number of {unit} > 0, or a duration with its unit such as "10s" or "5 minutes"'
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{accepted}, got {kind_of(value)}")
    if isinstance(value, str):
        if http and re.fullmatch(r"\s*[\d.]+\s*", value):
            raise ValueError(f'{accepted}, got "{value}" (give the unit: "{value.strip()}ms" or '
                                f'"{value.strip()}s")')
        try:
            seconds = parse_duration(value)
        except ValueError as exc:  # a DurationError, saying what a duration looks like
            raise ValueError(f"not a duration ({exc})") from None
    else:
        seconds = value / 1000 if http else float(value)
    if not seconds > 0:
        raise ValueError(f"{accepted}, got {value!r}")
    if seconds > 1e9:  # beyond what a process wait or a timer takes (about 31 years)
        raise ValueError(f"at most 1e9 seconds, got {value!r}")
    return float(seconds)
