"""``flareflow validate`` / ``build``: a workflow that calls a domain or method that does not exist, before a run.

``run.Inventory(...)`` reaches a domain through `Run.__getattr__`, so ``mypy --strict`` accepts any
``run.NAME`` and a misspelt one (``run.Inventroy``) fails only when a run reaches that line. Once the
workflow modules are imported, every `flareflow.Domain` is registered, so the check reads each
workflow function's source (`ast`, nothing executed), takes its first parameter as the run, and
reports each ``RUN.NAME`` that is neither an attribute of `flareflow.Run` nor a registered domain; and
in call chains written in place (``run.Inventory(p).chek()``, ``run.domain("Inventory")(p).chek()``)
each method the domain lacks and each keyword its handler cannot take (``reserve(qty=3)``) -- located
at file and line, with a "did you mean". Calls through other names (a handle kept in a variable, a
helper taking the run as another parameter) are not followed; they are checked when a run makes them.
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
    """One line per ``run.NAME`` of a workflow function naming nothing, per method a domain lacks and per
    keyword its handler cannot take: ``FILE:LINE workflow 'W': ...``."""
    known, attributes = default_domains.names(), run_attributes()
    problems: list[str] = []
    for defn in registry:
        if defn.metadata.get("source") is not None:  # a task graph: no Python body
            continue
        found = _parsed(defn.fn)
        if found is None:
            continue
        path, first, node = found
        shown = _shown(path, root)
        param = node.args.args[0].arg
        listing = ", ".join(known) or "none defined"
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == param \
                    and isinstance(sub.ctx, ast.Load):
                name = sub.attr
                if name.startswith("_") or name in attributes or name in known:
                    continue
                problems.append(f"{shown}:{sub.lineno + first - 1} workflow {defn.name!r}: {param}.{name} is "
                                f"neither an attribute of the run nor a domain{did_you_mean(name, known)} "
                                f"(domains: {listing})")
        for line, text in _chain_problems(node, param):
            problems.append(f"{shown}:{line + first - 1} workflow {defn.name!r}: {text}")
    return problems


def _chain_problems(node: ast.AST, param: str) -> list[tuple[int, str]]:
    """Each method a domain call chain names that its domain lacks, and each keyword its handler cannot
    take, for chains written in place: ``run.D(ctx).m(...).n(...)`` and ``run.domain("D")(ctx).m(...)``."""
    parents = {child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)}
    out: list[tuple[int, str]] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        domain = default_domains.get(_domain_named(call.func, param) or "")
        if domain is None:
            continue
        link: ast.AST = call
        while isinstance(parent := parents.get(link), ast.Attribute) and parent.value is link:
            method = domain.methods.get(parent.attr)
            if method is None:
                out.append((parent.lineno, f"{domain.name} has no method '{parent.attr}'"
                            f"{did_you_mean(parent.attr, list(domain.methods))} "
                            f"(methods: {', '.join(domain.methods)})"))
                break
            invoked = parents.get(parent)
            if not (isinstance(invoked, ast.Call) and invoked.func is parent):
                break
            wrong = method.unexpected_keywords([k.arg for k in invoked.keywords if k.arg is not None])
            if wrong:
                out.append((invoked.lineno, f"{domain.name}.{parent.attr}: {wrong}"))
            link = invoked
    return out


def _domain_named(func: ast.expr, param: str) -> str | None:
    """``D`` for ``run.D`` and for ``run.domain("D")`` (what is called with the context), else None."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == param:
        return func.attr
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Attribute) and func.func.attr == "domain" \
            and isinstance(func.func.value, ast.Name) and func.func.value.id == param and func.args \
            and isinstance(func.args[0], ast.Constant) and isinstance(func.args[0].value, str):
        return func.args[0].value
    return None


def _parsed(fn: object) -> tuple[Path, int, ast.AsyncFunctionDef | ast.FunctionDef] | None:
    """The file of ``fn``, its first line and its parsed definition (None when its source is not at hand)."""
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
    return Path(file), first, node


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
