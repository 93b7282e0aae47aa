"""What a loaded task graph is: its JSON definition, where it came from, and the vocabulary of its format.

A definition stays the plain JSON value the user wrote (the validator checks it, the compiler reads
it), so what the Worker receives at build time is exactly that JSON. ``lines`` maps a JSON path
(``tasks[3].depends_on[0]``) to the line of the source file it was written on, when the loader knew.
Standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

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
