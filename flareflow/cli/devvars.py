"""``.dev.vars``: the file wrangler dev reads a Worker's secrets from, parsed and written.

``flareflow serve`` writes ``.flareflow/build/.dev.vars`` (mode 0600) with ``FLAREFLOW_TOKEN`` and
the declared ``[tool.flareflow.worker].secrets``; their values come from the environment or from a
``.dev.vars`` in the project root, which this module reads. It reads the format the way wrangler's
dotenv does: ``KEY=value`` or ``KEY: value`` (keys of letters, digits, ``_ . -``), an optional
``export``, ``#`` comments (an unquoted value ends at ``#``), values in single quotes, double quotes
(with ``\\n`` / ``\\r`` escapes) or backticks, quoted values across lines. A line that is none of
these is skipped, as wrangler skips it, with a warning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

DEV_VARS = ".dev.vars"
_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z0-9_.-]+)(?:\s*=[ \t]*|:[ \t]+)")
_QUOTES = "'\"`"


class DevVarsError(UserError):
    """A ``.dev.vars`` file cannot be read, or a value cannot be written in its format."""


def _closing(text: str, start: int, quote: str) -> int:
    """Index of the quote closing the one at ``start`` (a double quote may be escaped), or -1."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] == '"':
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def parse_dev_vars(text: str, *, source: str = DEV_VARS,
                   warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """The variables of a ``.dev.vars`` file; later lines win, as in wrangler."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    values: dict[str, str] = {}
    pos, line_no = 0, 1
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        start_line = line_no
        stripped = line.strip()
        match = _KEY.match(line)
        if not stripped or stripped.startswith("#"):
            pass
        elif match is None:
            if warn is not None:
                warn(f"{source}:{start_line}: not KEY=value; skipped (as wrangler skips it)")
        else:
            key = match.group(1)
            rest_at = pos + match.end()
            first = text[rest_at] if rest_at < len(text) else ""
            close = _closing(text, rest_at, first) if first in _QUOTES and first else -1
            after = text[close + 1:text.find("\n", close + 1) if "\n" in text[close + 1:] else len(text)] \
                if close >= 0 else ""
            if close >= 0 and (not after.strip() or after.strip().startswith("#")):
                value = text[rest_at + 1:close]
                if first == '"':
                    value = value.replace("\\n", "\n").replace("\\r", "\r")
                line_no += text.count("\n", pos, close)
                end = text.find("\n", close)
                end = len(text) if end < 0 else end
            else:  # unquoted: up to a comment; an unmatched quote is part of the value
                value = line[match.end():].split("#", 1)[0].strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
                    value = value[1:-1]
            values[key] = value
        pos = end + 1
        line_no += 1
    return values


def read_dev_vars(path: Path, warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """`parse_dev_vars` of a file; an absent file has no variables."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DevVarsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DevVarsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_dev_vars(text, source=str(path), warn=warn)


def _quoted(key: str, value: str) -> str:
    """The value in the quotes that keep it literal: single quotes, else backticks, else double quotes
    (only when it has no backslash sequence dotenv would expand)."""
    if "'" not in value:
        return f"'{value}'"
    if "`" not in value:
        return f"`{value}`"
    if '"' not in value and "\\n" not in value and "\\r" not in value:
        return '"' + value.replace("\n", "\\n").replace("\r", "\\r") + '"'
    raise DevVarsError(f"{key}: its value has ', ` and \" (or a backslash sequence) and cannot be written to "
                       ".dev.vars so that wrangler reads it back the same")


def render_dev_vars(values: dict[str, str], header: str) -> str:
    """File text for ``values`` (in the given order) under a ``#`` comment header."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{key}={_quoted(key, value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically; False if unchanged."""
    if path.exists() and path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o077) == 0:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover tmp file
    os.replace(tmp, path)
    return True
