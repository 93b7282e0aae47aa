"""The traceback an error body carries: the frames of the user's code, innermost last, size-capped.

One place for both hosts (the engine builds every error body through `flareflow.engine.errors.error_body`).
A frame is ``{"file", "line", "function"}``. Left out: flareflow's own frames, the standard library's
(asyncio, threading, functools, ...) and frozen or synthetic ones (``<frozen importlib._bootstrap>``);
third-party packages stay, they may be what the user called. A file under an import root (an entry of
``sys.path``: the project root locally, the Worker's module directory on Cloudflare) is shown relative
to the most specific such root -- ``workflows/onboarding.py`` on both hosts -- else as it is.

Only the standard library, and no source lines are read (no file I/O): frames come from
``traceback.walk_tb`` with ``lookup_lines=False``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from functools import cache
from types import TracebackType
from typing import Any, Final

#: Frames an error body keeps (the innermost ones); how many were left out is ``traceback_truncated``.
MAX_FRAMES: Final = 20
#: Characters of a frame's file or function name that are kept.
MAX_NAME: Final = 300


@cache
def _own_dir() -> str:
    """flareflow's package directory, with a trailing separator."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


@cache
def _stdlib_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(standard library directories, package directories inside them), each with a trailing separator.

    A Python installed without a virtualenv keeps ``site-packages`` under its standard library
    directory: frames there are packages, not the standard library."""
    paths = sysconfig.get_paths()
    stdlib = {os.path.join(os.path.abspath(paths[k]), "") for k in ("stdlib", "platstdlib") if paths.get(k)}
    packages = {os.path.join(os.path.abspath(paths[k]), "") for k in ("purelib", "platlib") if paths.get(k)}
    return tuple(stdlib), tuple(packages)


def _is_user_file(path: str) -> bool:
    if not path or path.startswith("<"):
        return False
    if path.startswith(_own_dir()):
        return False
    stdlib, packages = _stdlib_dirs()
    return not (path.startswith(stdlib) and not path.startswith(packages))


def _shown(path: str, roots: list[str]) -> str:
    """``path`` relative to the longest import root that holds it, with ``/`` separators."""
    best = ""
    for root in roots:
        if len(root) > len(best) and path.startswith(root):
            best = root
    rel = path[len(best):] if best else path
    return rel.replace(os.sep, "/")


def _roots() -> list[str]:
    out = []
    for entry in sys.path:
        if isinstance(entry, str):
            out.append(os.path.join(os.path.abspath(entry or os.curdir), ""))
    return out


def _cut(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[:MAX_NAME] + "…"


def user_frames(tb: TracebackType | None, limit: int = MAX_FRAMES) -> tuple[list[dict[str, Any]], int]:
    """The user's frames of ``tb`` (outermost first), at most ``limit`` of them (the innermost), and
    how many more there were. Never raises."""
    try:
        summary = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
        roots: list[str] | None = None
        kept: list[dict[str, Any]] = []
        for frame in summary:
            path = os.path.abspath(frame.filename) if frame.filename and not frame.filename.startswith("<") \
                else frame.filename
            if not _is_user_file(path):
                continue
            if roots is None:
                roots = _roots()
            kept.append({"file": _cut(_shown(path, roots)), "line": frame.lineno, "function": _cut(frame.name)})
    except Exception:  # pragma: no cover - a traceback is plain data; this only guards the error path
        return [], 0
    dropped = max(0, len(kept) - limit)
    return kept[dropped:], dropped


def traceback_fields(exc: BaseException) -> dict[str, Any]:
    """``{"traceback": [...]}`` for an error body, plus ``"traceback_truncated": N`` when frames were cut."""
    frames, dropped = user_frames(exc.__traceback__)
    fields: dict[str, Any] = {"traceback": frames}
    if dropped:
        fields["traceback_truncated"] = dropped
    return fields


def format_frame(frame: dict[str, Any]) -> str:
    """``at workflows/onboarding.py:12 in create_account``, as the terminal views print a frame."""
    return f"at {frame.get('file')}:{frame.get('line')} in {frame.get('function')}"


__all__ = ["MAX_FRAMES", "format_frame", "traceback_fields", "user_frames"]
