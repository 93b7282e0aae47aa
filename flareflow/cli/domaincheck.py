"""``flareflow validate`` / ``build``: a workflow that calls a domain that does not exist, found before a run.

``run.Inventory(...)`` reaches a domain through `Run.__getattr__`, so ``mypy --strict`` accepts any
``run.NAME`` and a misspelt one (``run.Inventroy``) fails only when a run reaches that line. Once the
workflow modules are imported, every `flareflow.Domain` is registered, so the check reads each
workflow function's source (`ast`, nothing executed), takes its first parameter as the run, and
reports each ``RUN.NAME`` that is neither an attribute of `flareflow.Run` nor a registered domain, located at
its file and line with a "did you mean". Calls through other names (a helper taking the run as
another parameter, ``run.domain("Name")``) are not followed; ``run.domain`` checks its name at run time.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

from ..engine.domains import default_domains, run_attributes
from ..engine.errors import did_you_mean
from ..engine.registry import Registry


def unknown_domains(registry: Registry, root: Path) -> list[str]:
    """One line per ``run.NAME`` of a workflow function naming nothing: ``FILE:LINE workflow 'W': ...``."""
    known, attributes = default_domains.names(), run_attributes()
    problems: list[str] = []
    for defn in registry:
        if defn.metadata.get("source") is not None:  # a task graph: no Python body
            continue
        found = _attribute_uses(defn.fn)
        if found is None:
            continue
        path, param, uses = found
        shown = _shown(path, root)
        for line, name in uses:
            if name.startswith("_") or name in attributes or name in known:
                continue
            listing = ", ".join(known) or "none defined"
            problems.append(f"{shown}:{line} workflow {defn.name!r}: {param}.{name} is neither an attribute of the "
                            f"run nor a domain{did_you_mean(name, known)} (domains: {listing})")
    return problems


def _attribute_uses(fn: object) -> tuple[Path, str, list[tuple[int, str]]] | None:
    """The file of ``fn``, the name of its first parameter and each ``(line, attribute)`` read from it."""
    target = inspect.unwrap(fn)  # type: ignore[arg-type]
    try:
        lines, first = inspect.getsourcelines(target)
        file = inspect.getsourcefile(target)
    except (OSError, TypeError):
        return None
    if file is None:
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) or not node.args.args:
        return None
    param = node.args.args[0].arg
    uses = sorted({(n.lineno + first - 1, n.attr) for n in ast.walk(node)
                   if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == param
                   and isinstance(n.ctx, ast.Load)})
    return Path(file), param, uses


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
