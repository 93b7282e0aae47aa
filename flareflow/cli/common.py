"""What every command shares: the consoles, the one-line error path, project loading."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..engine.errors import FlareflowError
from .errors import UserError
from .project import Project, import_warnings, load_project

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
if not console.is_terminal:  # piped: no wrapping at 80 columns, so lines stay greppable
    console.width = 160

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-C", help="Project folder (default: the current one or the nearest parent "
                 "with a [tool.flareflow] pyproject or a workflows/ folder).", show_default=False),
]


#: Where `write_json_line` writes while `json_stdout` is in effect (the process's stdout).
_json_out: TextIO | None = None


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """With ``enabled`` (``--json``), stdout carries nothing but `write_json_line`'s NDJSON: whatever
    else is written to ``sys.stdout`` meanwhile -- a workflow module printing when imported, a
    workflow body's ``print()`` -- goes to stderr. (Steps' own output is captured as their logs.)"""
    global _json_out
    if not enabled:
        yield
        return
    saved, _json_out = _json_out, sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_out = saved


def write_json_line(value: Any) -> None:
    """One compact JSON line on stdout (the NDJSON of ``--json`` and ``runs events``)."""
    out = _json_out if _json_out is not None else sys.stdout
    out.write(json.dumps(value, separators=(",", ":")) + "\n")
    out.flush()


class UsageError(Exception):
    """A usage error: printed as one line, exit code 2."""


def key_value_pairs(pairs: list[str] | None, option: str, form: str) -> dict[str, str]:
    """``OPTION KEY=VALUE ...`` as a mapping of the raw values (a later key wins); a pair without ``=`` or
    without a key is a usage error naming the option and the ``form`` it expects."""
    found: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects {form}, got '{pair}'")
        found[key.strip()] = value
    return found


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(code)


def guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except typer.Exit:
        raise
    except UsageError as exc:
        fail(str(exc), 2)
    except (UserError, FlareflowError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def run_async(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return guard(lambda: asyncio.run(coro_fn()))


def load(path: Path | None, discover: bool = True, *, tolerant: bool = False) -> Project:
    """The project at ``path``; ``tolerant`` (commands that execute runs): a workflow module that fails
    to import is a warning on stderr, not an error -- its runs are held until it imports."""
    project = guard(lambda: load_project(path, discover=discover, tolerant=tolerant))
    for line in import_warnings(project):
        err_console.print(f"[yellow]warning:[/yellow] {escape(line)}")
    return project


