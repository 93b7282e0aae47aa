"""Held runs come back by themselves: the processes that execute local runs watch the workflow code.

A run whose workflow is missing (its module moved away or failing to import) or whose code diverges
from its history is held (`flareflow.durable_objects.coordinator`). ``flareflow resume``,
``flareflow serve --local`` and the background worker (``flareflow worker``) poll the project's
Python and task-graph files (`POLL_SECONDS`); when one changes they
import the workflows again -- tolerantly: a module that still fails is reported, the others load --
and re-check every held run they may execute (`LocalRuntime.recheck_held`). A run whose code is back
continues; the others stay held, and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rich.markup import escape

from ..local.runtime import LocalRuntime
from .common import err_console
from .errors import UserError
from .project import Project, discover_workflows, import_warnings

T = TypeVar("T")

#: How often the Python files of the project are looked at (their names, sizes and times only).
POLL_SECONDS = 1.0
#: Folders never looked into: environments, caches, flareflow's own state and build.
SKIPPED = frozenset({".flareflow", ".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages"})


def code_fingerprint(root: Path) -> frozenset[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of every ``.py`` file (and task-graph file: ``.json``, ``.yaml``,
    ``.yml``) under ``root`` outside `SKIPPED` folders."""
    found: set[tuple[str, int, int]] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED and not d.startswith(".")]
        for name in files:
            if name.endswith((".py", ".json", ".yaml", ".yml")):  # Python modules and task graphs
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):  # vanished between the listing and the stat
                    st = os.stat(path)
                    found.add((path, st.st_size, st.st_mtime_ns))
    return frozenset(found)


async def watch_code(project: Project, runtime: LocalRuntime, say: Callable[[str], None],
                     interval: float = POLL_SECONDS) -> None:
    """Until cancelled: when the project's Python files change, import the workflows again and
    re-check the held runs; ``say`` gets what changed (import failures; on every reload, how many
    workflows loaded and which held runs were re-checked -- a developer sees the save was taken)."""
    last = await asyncio.to_thread(code_fingerprint, project.root)
    while True:
        await asyncio.sleep(interval)
        current = await asyncio.to_thread(code_fingerprint, project.root)
        if current == last:
            continue
        last = current
        try:
            discover_workflows(project, tolerant=True)
        except UserError as exc:  # the settings themselves are wrong now: keep what is loaded
            say(f"workflow code changed but cannot be loaded: {exc}")
            continue
        for line in import_warnings(project):
            say(line)
        rechecked = runtime.recheck_held()
        line = f"workflow code changed: {len(project.registry)} workflow(s) loaded"  # every reload says so
        if rechecked:
            line += f"; re-checking {len(rechecked)} held run(s): {', '.join(rechecked)}"
        say(line)


def say_code_change(line: str) -> None:
    """What `watch_code` found, on stderr (stdout may be ``--json``'s NDJSON)."""
    err_console.print(f"[yellow]{escape(line)}[/yellow]")


def watching_code(project: Project, runtime: Callable[[], LocalRuntime], say: Callable[[str], None],
                  fn: Callable[[Any], Coroutine[Any, Any, T]]) -> Callable[[Any], Coroutine[Any, Any, T]]:
    """``fn`` with `watch_code` running beside it (on the runtime ``runtime()`` returns once it runs)."""

    async def wrapped(runs: Any) -> T:
        watcher = asyncio.ensure_future(watch_code(project, runtime(), say))
        try:
            return await fn(runs)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    return wrapped
