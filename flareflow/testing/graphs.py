"""Task graphs under test: a graph file becomes a workflow of its own registry, and its runs get the
local runtime's task ports (shell, docker, data_processor, http, database).

Ports are process-wide (`flareflow.graphs.ports.install`), so `graph_ports` installs the local ones
only for the duration of one test run and puts back whatever was installed before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import WorkflowDefinitionError
from ..engine.registry import Registry, WorkflowDef
from ..graphs.compiler import graph_of, register_graph
from ..graphs.files import GRAPH_SUFFIXES, GraphFileError, load_graph_file
from ..graphs.ports import current, install
from ..graphs.validate import validate_graph
from ..local.graphtasks import local_ports


def is_graph_path(value: str | Path) -> bool:
    """Whether ``value`` names a graph file (a `Path`, or a name ending ``.json``, ``.yaml``, ``.yml``:
    no workflow is named so)."""
    return isinstance(value, Path) or Path(value).suffix.lower() in GRAPH_SUFFIXES


@dataclass
class ProjectGraphs:
    """The task-graph files of the project at or above a folder (`project_graphs`): where they were
    looked for, and each file's workflow name (its file stem when it does not parse)."""

    folders: list[str] = field(default_factory=list)
    names: dict[str, Path] = field(default_factory=dict)

    def find(self, name: str) -> Path | None:
        """The file of the graph called ``name``, or named ``name.json`` / ``name.yaml``."""
        return self.names.get(name) or next((path for path in self.names.values() if path.stem == name), None)


def project_graphs(start: Path) -> ProjectGraphs:
    """The graph files of the project's workflow folders (``tool.flareflow.workflows``, the folders every
    command reads), for `create_test_workflow` by name: a graph file has no module a test could import
    to register it. Nothing when ``start`` is in no project or its settings do not load."""
    from ..cli.errors import UserError
    from ..cli.graphs import graph_files
    from ..cli.project import Project, find_root, is_root
    from ..cli.settings import load_settings

    found = ProjectGraphs()
    root = find_root(start)
    if not is_root(root):
        return found
    try:
        settings, pyproject = load_settings(root)
    except UserError:  # the commands say what is wrong with pyproject.toml; a test only misses its graphs
        return found
    project = Project(root=root, settings=settings, pyproject=pyproject)
    found.folders = [str(root / entry) for entry in settings.workflows]
    for path in graph_files(project):
        try:
            name = load_graph_file(path, str(path)).name or path.stem
        except GraphFileError:
            name = path.stem
        found.names.setdefault(name, path)
    return found


def load_graph_workflow(path: str | Path) -> WorkflowDef:
    """The workflow of the graph file at ``path``, registered in a registry of its own; a file that
    does not parse or validate is a `WorkflowDefinitionError` listing every located problem."""
    try:
        graph = load_graph_file(Path(path), str(path))
    except GraphFileError as exc:
        raise WorkflowDefinitionError(str(exc.error)) from None
    errors = validate_graph(graph)
    if errors:
        raise WorkflowDefinitionError("; ".join(str(e) for e in errors))
    return register_graph(Registry(), graph)


@dataclass
class GraphTasks:
    """What a test can know of a graph's tasks before it runs: their ids and names (what a mock may
    name), and the types of the tasks whose steps carry each task tag (``task`` on the events)."""

    labels: set[str] = field(default_factory=set)
    kinds: dict[str, set[str]] = field(default_factory=dict)

    def step_kind(self, tag: str | None) -> str | None:
        """The task type whose step result differs from the task's result (``shell``, ``docker``: the
        process's ``{stdout, exit_code, ...}``; ``http``: ``{status, body}``) when that is the only kind
        of step under ``tag``; None otherwise (the step's result is the task's result, or the tag is
        shared by tasks of several types)."""
        stepping = self.kinds.get(tag or "", set()) - _NO_STEP
        if len(stepping) == 1 and stepping <= {"shell", "docker", "http"}:
            return next(iter(stepping))
        return "shell" if stepping == {"shell", "docker"} else None  # one shape for both


#: Task types that run no step of their own (their nested tasks do, or they wait).
_NO_STEP = frozenset({"sleep", "wait_event", "input", "conditional", "parallel", "loop"})


def graph_tasks(defn: WorkflowDef) -> GraphTasks:
    """The `GraphTasks` of a graph workflow (empty for a Python workflow).

    A step's task tag is its task's id, except where the compiler (`flareflow.graphs.compiler`) runs a
    task under its parent's tag: a loop's body always, a conditional's branch and an ``on_failure``
    handler when they have no id of their own (a graph's ``on_failure`` task: ``on_failure``)."""
    found = GraphTasks()
    graph = graph_of(defn)
    if graph is None:
        return found

    def walk(task: Any, tag: str) -> None:
        if not isinstance(task, dict):
            return
        found.labels.update(str(task[k]) for k in ("id", "name") if isinstance(task.get(k), str) and task[k])
        found.kinds.setdefault(tag, set()).add(str(task.get("type")))
        kind = task.get("type")
        if kind == "conditional":
            for branch in ("then", "else"):
                body = task.get(branch)
                walk(body, body.get("id") or tag if isinstance(body, dict) else tag)
        elif kind == "parallel":
            for sub in task.get("tasks") or []:
                walk(sub, sub.get("id") or tag if isinstance(sub, dict) else tag)
        elif kind == "loop":
            walk(task.get("then"), tag)
        handler = task.get("on_failure")
        if isinstance(handler, dict):
            walk(handler, handler.get("id") or tag)

    for task in graph.definition.get("tasks") or []:
        if isinstance(task, dict):
            walk(task, str(task.get("id")))
    for task in graph.definition.get("on_failure") or []:
        if isinstance(task, dict):
            walk(task, task.get("id") or "on_failure")
    return found


@contextlib.contextmanager
def graph_ports(defn: WorkflowDef, state_dir: Path) -> Iterator[None]:
    """While a graph workflow runs: the local ports, tasks working from the current directory (the
    project root when pytest runs there) and keeping their files in the run's ``state_dir``."""
    if graph_of(defn) is None:
        yield
        return
    previous = current()
    install(local_ports(Path.cwd(), state_dir))
    try:
        yield
    finally:
        install(previous)
