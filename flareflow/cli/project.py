"""Finding the user's project and importing its workflows into the registry."""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ai.prompt import register as register_ai_prompt
from ..engine.domains import default_domains
from ..engine.errors import FlareflowError, WorkflowDefinitionError
from ..engine.registry import Registry, default_registry
from .errors import UserError
from .settings import Settings, load_settings


class ProjectError(UserError):
    """The project cannot be loaded (no workflows, an import failed); one readable line."""


@dataclass
class Project:
    """A user's project: its root, settings and the workflows it declares."""

    root: Path
    settings: Settings
    pyproject: dict[str, Any] = field(default_factory=dict)
    registry: Registry = field(default_factory=lambda: default_registry)
    modules: list[str] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return (self.root / self.settings.local.state_dir).resolve()

    @property
    def name(self) -> str:
        if self.settings.name:
            return self.settings.name
        project = self.pyproject.get("project", {})
        return str(project.get("name") or self.root.name)


def is_root(folder: Path) -> bool:
    """Whether ``folder`` holds a project: a ``[tool.flareflow]`` pyproject or a workflows/ folder."""
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file() and "[tool.flareflow" in pyproject.read_text(encoding="utf-8", errors="replace"):
        return True
    return (folder / "workflows").is_dir()


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that `is_root` (``start`` itself when there is none)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if is_root(folder):
            return folder
    return start


def load_project(start: Path | None = None, *, discover: bool = True, tolerant: bool = False) -> Project:
    """Load settings and (optionally) import every workflow module of the project at or above ``start``
    (``tolerant``: see `discover_workflows`)."""
    root = find_root(start or Path.cwd())
    if not is_root(root):  # said before anything is created there (no .flareflow/ appears)
        raise ProjectError(f"no flareflow project here ({root}: no pyproject.toml with [tool.flareflow] and "
                           "no workflows/ folder, here or above); create one with: flareflow new DIR, or "
                           "pass --project DIR")
    settings, pyproject = load_settings(root)
    project = Project(root=root, settings=settings, pyproject=pyproject)
    if discover:
        discover_workflows(project, tolerant=tolerant)
    return project


def _module_names(project: Project) -> list[tuple[str, Path | None]]:
    found: list[tuple[str, Path | None]] = []
    for entry in project.settings.workflows:
        path = (project.root / entry).resolve()
        if path.is_dir():
            package = ".".join(path.relative_to(project.root).parts)
            for file in sorted(path.glob("*.py")):
                if not file.name.startswith("_"):
                    found.append((f"{package}.{file.stem}", file))
        elif path.suffix == ".py" and path.is_file():
            found.append((".".join(path.relative_to(project.root).with_suffix("").parts), path))
        elif path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
            continue  # a task graph file: flareflow.cli.graphs registers it
        elif entry.endswith(".py") or "/" in entry:
            raise ProjectError(f"tool.flareflow.workflows: '{entry}' does not exist in {project.root}")
        else:
            found.append((entry, None))
    return found


def discover_workflows(project: Project, *, tolerant: bool = False) -> list[str]:
    """Import the project's workflow modules; the ``@workflow`` decorators fill the registry, and the
    task-graph files of the workflow folders are registered beside them (`flareflow.cli.graphs`).

    ``tolerant`` (the commands that execute runs: ``resume``, ``serve --local``): a module that fails
    to import is reported, not raised -- its workflows are missing, so their runs are held until it
    imports again -- and a project without any workflow is no error. Returns what failed
    (``registry.import_errors``)."""
    project.registry.clear()
    project.modules.clear()
    root = str(project.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    names = _module_names(project)
    _forget_project_modules(project)
    default_domains.forget_unloaded()  # the dropped modules' domains are defined again as they import
    importlib.invalidate_caches()  # a module file that came back since the last discovery is found
    for module, file in names:
        for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
            del sys.modules[loaded]
        try:
            importlib.import_module(module)
        except Exception as exc:
            if isinstance(exc, (WorkflowDefinitionError, FlareflowError)):
                problem = str(exc)
            else:
                shown = file.relative_to(project.root) if file is not None else module
                problem = f"{shown}{_user_line(exc, file)}: import failed: {type(exc).__name__}: {exc}"
            if not tolerant:
                raise ProjectError(problem) from None
            project.registry.import_errors.append(problem)
            continue
        project.modules.append(module)
    from .graphs import register_graphs  # task graphs (*.json, *.yaml) beside the Python workflows

    register_graphs(project, tolerant=tolerant)
    if project.settings.ai is not None:  # the built-in behind POST /api/workflow, only where AI is configured
        register_ai_prompt(project.registry)
    if tolerant:
        return list(project.registry.import_errors)
    if not project.registry.names():
        looked = ", ".join(project.settings.workflows)
        raise ProjectError(
            f"no workflows found in {looked} under {project.root}; decorate an async function with "
            "@workflow(\"name\") there, or create a project with: flareflow new DIR"
        )
    return []


def import_warnings(project: Project) -> list[str]:
    """One line per workflow module that failed to import (a tolerant discovery), saying what happens
    to its runs."""
    return [f"{problem} (runs of its workflows are held until it imports)"
            for problem in project.registry.import_errors]


def _forget_project_modules(project: Project) -> None:
    """Drop every imported module whose file is in the project (outside virtualenvs and installed
    packages), so a second discovery in one process (``flareflow serve``'s rebuilds) sees edits to
    helper modules too, not only to the workflow modules themselves."""
    root = project.root.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "flareflow" or name.startswith("flareflow."):
            continue
        path = Path(file).resolve()
        if root in path.parents and not {"site-packages", ".venv", "venv", ".flareflow"} & set(path.parts):
            del sys.modules[name]


def _user_line(exc: BaseException, file: Path | None) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f":{exc.lineno}"
    if file is None:
        return ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == file.resolve():
            return f":{frame.lineno}"
    return ""
