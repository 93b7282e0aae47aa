"""``.dev.vars``: the file wrangler dev reads a Worker's secrets from, parsed and written.

``flareflow serve`` writes ``.flareflow/build/.dev.vars`` (mode 0600) with ``FLAREFLOW_TOKEN`` and
the declared ``[tool.flareflow.worker].secrets``; their values come from the environment or from a
``.dev.vars`` in the project root, which this module reads. The format is wrangler's (dotenv):
``KEY=value`` lines, ``#`` comments, an optional ``export``, single-quoted values taken literally and
double-quoted values with ``\\n`` escapes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UserError

DEV_VARS = ".dev.vars"
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class DevVarsError(UserError):
    """A ``.dev.vars`` line cannot be read, or a value cannot be written in its format."""


def parse_dev_vars(text: str, *, source: str = DEV_VARS) -> dict[str, str]:
    """The variables of a ``.dev.vars`` file; a line that is not ``KEY=value`` names its number."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise DevVarsError(f"{source}:{number}: expected KEY=value")
        key, raw = match.groups()
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            value = raw[1:-1]
        elif len(raw) >= 2 and raw[0] == raw[-1] == '"':
            value = raw[1:-1].replace("\\n", "\n").replace("\\r", "\r")
        else:
            value = raw.split(" #", 1)[0].strip()  # unquoted: an inline comment ends it
        values[key] = value
    return values


def read_dev_vars(path: Path) -> dict[str, str]:
    """`parse_dev_vars` of a file; an absent file has no variables."""
    if not path.exists():
        return {}
    return parse_dev_vars(path.read_text(encoding="utf-8"), source=str(path))


def _quoted(key: str, value: str) -> str:
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    if '"' not in value:
        return '"' + value.replace("\n", "\\n").replace("\r", "\\r") + '"'
    raise DevVarsError(f"{key}: a value with both quote characters cannot be written to .dev.vars")


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
