"""Finding the user's project and importing its workflows into the registry."""

from __future__ import annotations

import difflib
import importlib
import json
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    #: The ``registry.import_errors`` lines that are not errors of a file of the project but notes on a
    #: graph file run from outside the workflow folders (`outside_graph_notes`).
    outside_notes: list[str] = field(default_factory=list)

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
    project.outside_notes.clear()
    if tolerant:
        project.outside_notes.extend(outside_graph_notes(project))
        project.registry.import_errors.extend(project.outside_notes)
        return list(project.registry.import_errors)
    if not project.registry.names():
        raise _no_workflows(project)
    return []


def _no_workflows(project: Project) -> ProjectError:
    looked = ", ".join(project.settings.workflows)
    return ProjectError(f"no workflows found in {looked} under {project.root}; decorate an async function with "
                        "@workflow(\"name\") there, or create a project with: flareflow new DIR")


#: `Registry.register`'s refusal of a second workflow of one name.
_CLASH = re.compile(r"two workflows are named '([^']+)'")


def load_for_listing(start: Path | None, name: str | None = None) -> tuple[Project, list[str]]:
    """The project for ``flareflow run NAME`` and ``flareflow workflows``, and one warning per file that
    did not load: a broken file (a graph with errors, a module that fails to import, a Python workflow
    with an unreadable schedule) must not stop running or listing the workflows that did load.
    ``validate``, ``build`` and ``deploy`` stay strict: they are where a project is judged whole.

    A name two files claim is an error still, for ``run`` of that name and for the whole listing (a row
    would stand for two files). ``name`` (``run NAME``): when it did not load, no warnings -- running it fails, and
    `Registry.get`'s message names it and every file that did not load (it may be in one of them).
    A project with no workflow and no broken file is the usual `ProjectError`."""
    project = load_project(start, tolerant=True)
    broken = [p for p in project.registry.import_errors if p not in project.outside_notes]
    if not project.registry.names() and not broken:
        raise _no_workflows(project)
    for problem in broken:  # a name two files claim: which one it means is unknown
        clash = _CLASH.search(problem)
        if clash is not None and (name is None or clash.group(1) == name):
            raise ProjectError(problem)
    if name is not None and name not in project.registry:
        return project, []
    return project, [p if "see: flareflow validate" in p else f"{p} (see: flareflow validate)" for p in broken]


#: Graph files run with ``flareflow run FILE`` from outside the workflow folders whose run was left
#: unfinished: workflow name -> the file's absolute path (a JSON object in the state directory).
OUTSIDE_GRAPHS = "outside-graphs.json"


def outside_graphs(project: Project) -> dict[str, str]:
    """The recorded outside graph files (`OUTSIDE_GRAPHS`); none when the record is missing or unreadable."""
    try:
        data = json.loads((project.state_dir / OUTSIDE_GRAPHS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def note_outside_graph(project: Project, name: str, path: Path, *, unfinished: bool) -> None:
    """Record (``unfinished``) or forget that workflow ``name`` was run from ``path``, outside the
    workflow folders. Only ``flareflow run FILE`` knows such a workflow; the record lets a later
    ``resume``/``serve --local`` say which file its held runs need, rather than only its name."""
    record = outside_graphs(project)
    if unfinished:
        record[name] = str(path.resolve())
    elif record.pop(name, None) is None:
        return
    target = project.state_dir / OUTSIDE_GRAPHS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def outside_graph_notes(project: Project) -> list[str]:
    """For each recorded outside graph file whose workflow is not registered, what its runs need: the
    file in a workflow folder (then ``flareflow resume`` continues them). A recorded workflow that is
    registered now (its file was moved in) needs nothing."""
    folders = ", ".join(f"{entry.rstrip('/')}/" for entry in project.settings.workflows)
    return [f"workflow '{name}' is {path}, run from outside the workflow folders (flareflow run FILE): its "
            f"unfinished runs are held until that file is in {folders} (move it there), or cancel them"
            for name, path in sorted(outside_graphs(project).items()) if name not in project.registry]


def is_task_graph(path: Path) -> bool:
    """Whether a ``.json``/``.yaml``/``.yml`` file of a workflow folder is meant as a task graph: its top
    level is a mapping with a ``tasks`` key (or a near miss, ``task``, ``Tasks``, so a misspelt graph
    still gets its error). Other files there (settings, fixtures) are not task graphs and are skipped.
    A file that cannot be read or parsed counts as one: it may be a graph with a syntax error, which is
    worth an error. YAML is composed, not constructed: aliases are not expanded, so a "billion laughs"
    file costs nothing here (`load_graph_file` refuses it later)."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            keys = [str(k) for k in data] if isinstance(data, dict) else None
        else:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            keys = ([str(k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
                    if isinstance(node, yaml.MappingNode) else None)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError, RecursionError):
        return True
    if keys is None:
        return False
    return "tasks" in keys or bool(difflib.get_close_matches("tasks", [k.lower() for k in keys], n=1, cutoff=0.75))


def import_warnings(project: Project) -> list[str]:
    """One line per workflow module that failed to import (a tolerant discovery), saying what happens
    to its runs (a note on an outside graph file says so itself)."""
    return [problem if problem in project.outside_notes else f"{problem} (runs of its workflows are held until "
            "it imports)" for problem in project.registry.import_errors]


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
