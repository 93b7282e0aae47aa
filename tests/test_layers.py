"""Imports go one way (DESIGN.md): ``engine`` imports nothing of ours; the host-agnostic layers above it
(``migrations``, ``graphs``, ``ai``) import only what is below them; ``durable_objects`` builds on
those, ``worker`` on ``durable_objects``; ``local``, ``cli`` and ``testing`` may import everything.

Read from the source (``ast``, every ``from flareflow...`` / relative import, lazy ones inside functions
included), so a new edge against the grain fails here, naming the file, before it becomes a cycle
the Worker's import order trips over."""

from __future__ import annotations

import ast
from pathlib import Path

import flareflow

ROOT = Path(flareflow.__file__).resolve().parent

#: What each package may import of ours (besides itself). Packages not listed may import anything.
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "migrations": {"engine"},
    "graphs": {"engine"},
    "ai": {"engine", "migrations"},
    "durable_objects": {"engine", "migrations", "ai"},
    "worker": {"engine", "migrations", "ai", "durable_objects", "console"},
}


def _imported_packages(parts: tuple[str, ...], source: str) -> set[str]:
    """The packages of ours (first part under ``flareflow``) that the module at ``parts`` (its path under
    the package, ``("engine", "run.py")``) imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:-1])[: len(parts) - node.level] if node.level > 1 else list(parts[:-1])
                module = (node.module or "").split(".") if node.module else []
                targets = [base + module] if module else [[*base, a.name] for a in node.names]
            elif node.module and node.module.split(".")[0] == "flareflow":
                targets = [node.module.split(".")[1:]]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "flareflow"]
        for target in targets:
            if target and (ROOT / target[0]).is_dir():
                found.add(target[0])
    return found


def test_imports_go_one_way() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            imported = _imported_packages(path.relative_to(ROOT).parts, path.read_text(encoding="utf-8"))
            for target in sorted(imported - allowed - {package}):
                wrong.append(f"{path.relative_to(ROOT)} imports flareflow.{target}")
    assert not wrong, "imports against the grain:\n" + "\n".join(wrong)


def test_the_check_sees_every_form_of_import() -> None:
    """The reader itself: relative (one and two levels up, ``from .. import x``), absolute and lazy."""
    source = ("from ..local import runtime\nimport flareflow.cli.main\nfrom .. import graphs\n"
              "from .run import Run\ndef f():\n    from flareflow.ai.steps import RunAi\n")
    assert _imported_packages(("engine", "probe.py"), source) == {"local", "cli", "graphs", "ai", "engine"}
    assert _imported_packages(("engine", "sub", "probe.py"), "from ...worker import router\n") == {"worker"}
