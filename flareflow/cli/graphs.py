"""Task graphs in a project: finding their files, registering them beside Python workflows, and the
``flareflow create`` / ``flareflow graph`` commands.

Graph files are the ``*.json``, ``*.yaml`` and ``*.yml`` files in the project's workflow folders
(``tool.flareflow.workflows``; a listed file counts too). `register_graphs` validates each and puts it
in the project's registry (one namespace with the Python workflows: a clash names both files);
`graph_errors` lists every problem of every file, located, for ``flareflow validate``. The local
ports (`flareflow.local.graphtasks`) are installed here, so every command that executes runs has
them.
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..engine.errors import FlareflowError, WorkflowDefinitionError, did_you_mean
from ..graphs.compiler import ENV_KEY, graph_of, register_graph
from ..graphs.files import GRAPH_SUFFIXES, GraphFileError, load_graph_file
from ..graphs.model import Graph, GraphError, child
from ..graphs.validate import NAME, cloudflare_errors, env_names, validate_graph
from ..local.graphtasks import install_local_ports
from .common import ProjectOpt, UsageError, console, err_console, fail, guard, key_value_pairs
from .common import load as load_project
from .errors import UserError
from .project import is_task_graph

__all__ = ["GraphProblems", "graph_errors", "graph_files", "not_graph_files", "register", "register_graphs"]

TEMPLATES = ("ci-cd", "scheduled", "web-app", "custom")


class GraphProblems(UserError):
    """Graph files with errors; the message is their first error and how many more there are."""


def graph_files(project: Any) -> list[Path]:
    """Every graph file of the project's workflow folders (and listed files), sorted: the ``.json`` and
    ``.yaml`` files of a folder that are task graphs (`flareflow.cli.project.is_task_graph`) -- a settings
    or fixture file beside them is not one, and no error (`not_graph_files`) -- and every listed file."""
    return [path for path, listed in _candidate_files(project) if listed or is_task_graph(path)]


def not_graph_files(project: Any) -> list[Path]:
    """The ``.json``/``.yaml`` files of the workflow folders that are not task graphs (no ``tasks``),
    which `graph_files` skips; ``flareflow validate`` names them, so a graph missing its tasks is seen."""
    return [path for path, listed in _candidate_files(project) if not listed and not is_task_graph(path)]


def _candidate_files(project: Any) -> list[tuple[Path, bool]]:
    """The ``.json``/``.yaml`` files of the workflow folders, and the files listed by name (True)."""
    found: list[tuple[Path, bool]] = []
    for entry in project.settings.workflows:
        path = (project.root / entry).resolve()
        if path.is_dir():
            found.extend((p, False) for p in sorted(path.iterdir()) if p.suffix.lower() in GRAPH_SUFFIXES
                         and p.is_file() and not p.name.startswith((".", "_")))
        elif path.is_file() and path.suffix.lower() in GRAPH_SUFFIXES:
            found.append((path, True))
    return found


def shown(project: Any, path: Path) -> str:
    """A file as messages name it: relative to the project root when inside it."""
    try:
        return path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def load_checked(path: Path, source: str, *, cloudflare: bool = False) -> tuple[Graph | None, list[GraphError]]:
    """A file's graph and its errors (``cloudflare``: the local-only tasks too); no graph when the file
    does not parse."""
    try:
        graph = load_graph_file(path, source)
    except GraphFileError as exc:
        return None, [exc.error]
    errors = validate_graph(graph)
    if cloudflare and not errors:
        errors = cloudflare_errors(graph)
    return graph, errors


def database_tasks(tasks: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        if task.get("type") == "database":
            out.append(task)
        out += database_tasks(task.get("tasks"))
        out += database_tasks([task[k] for k in ("then", "else", "on_failure") if isinstance(task.get(k), dict)])
    return out


def migration_folders(graph: Graph) -> list[str]:
    """The ``migration`` folders a graph's database tasks name, in definition order, once each."""
    d = graph.definition
    folders: list[str] = []
    for task in database_tasks(d.get("tasks")) + database_tasks(d.get("on_failure")):
        folder = task.get("migration")
        if isinstance(folder, str) and folder not in folders:
            folders.append(folder)
    return folders


def embed_migrations(project: Any, graph: Graph) -> Graph:
    """A copy of ``graph`` holding the SQL files of every ``migration`` folder its database tasks name
    (relative to the project root), in order: the Worker has no project folder to read them from."""
    files: dict[str, list[list[str]]] = {}
    for folder in migration_folders(graph):
        path = (project.root / folder).resolve()
        if not path.is_dir():
            raise GraphProblems(f"{graph.source}: migration folder '{folder}' does not exist in {project.root}")
        files[folder] = [[p.name, p.read_text(encoding="utf-8")] for p in sorted(path.glob("*.sql"))]
    return Graph(graph.definition, graph.source, graph.lines, files)


def graph_errors(project: Any, *, cloudflare: bool) -> list[GraphError]:
    """Every error of every graph file of the project (a ``migration`` folder that is not there too:
    the run and the build would refuse it)."""
    errors: list[GraphError] = []
    for path in graph_files(project):
        graph, found = load_checked(path, shown(project, path), cloudflare=cloudflare)
        errors.extend(found)
        if graph is not None and not found:
            errors.extend(_missing_migrations(project, graph))
    return errors


def _missing_migrations(project: Any, graph: Graph) -> list[GraphError]:
    out: list[GraphError] = []

    def task(body: Any, here: str) -> None:
        if not isinstance(body, dict):
            return
        folder = body.get("migration")
        if (body.get("type") == "database" and isinstance(folder, str) and "${" not in folder
                and not (project.root / folder).is_dir()):
            out.append(GraphError(graph.where(child(here, "migration")), child(here, "migration"),
                                  f"migration folder '{folder}' does not exist (a path from the project "
                                  f"root, {project.root})"))
        tasks(body.get("tasks"), child(here, "tasks"))
        for key in ("then", "else", "on_failure"):
            task(body.get(key), child(here, key))

    def tasks(bodies: Any, path: str) -> None:
        for index, body in enumerate(bodies if isinstance(bodies, list) else []):
            task(body, child(path, index))

    tasks(graph.definition.get("tasks"), "tasks")
    tasks(graph.definition.get("on_failure"), "on_failure")
    return out


def register_graphs(project: Any, *, tolerant: bool = False) -> list[str]:
    """Register the project's valid graphs; an invalid one is a `GraphProblems` (``tolerant``: recorded
    in ``registry.import_errors`` instead, so its runs are held until it is fixed). Installs the local
    ports. Returns the names registered."""
    install_local_ports(project.root, project.state_dir)
    names: list[str] = []
    for path in graph_files(project):
        graph, errors = load_checked(path, shown(project, path))
        if errors or graph is None:
            more = f" (and {len(errors) - 1} more; see: flareflow validate)" if len(errors) > 1 else ""
            problem = f"{errors[0]}{more}"
            if not tolerant:
                raise GraphProblems(problem)
            project.registry.import_errors.append(problem)
            continue
        try:
            names.append(register_graph(project.registry, graph).name)
        except WorkflowDefinitionError as exc:
            if not tolerant:
                raise GraphProblems(str(exc)) from None
            project.registry.import_errors.append(str(exc))
    for unknown in unknown_workflows(project):
        if not tolerant:
            raise GraphProblems(str(unknown))
        project.registry.import_errors.append(str(unknown))
    return names


def _workflow_tasks(tasks: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for index, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict):
            continue
        here = f"{path}[{index}]"
        if task.get("type") == "workflow":
            out.append((here, task))
        out += _workflow_tasks(task.get("tasks"), f"{here}.tasks")
        for key in ("then", "else", "on_failure"):
            if isinstance(task.get(key), dict):
                out += [(f"{here}.{key}{p[len('[0]'):]}", t) for p, t in _workflow_tasks([task[key]], "")]
    return out


def unknown_workflows(project: Any) -> list[GraphError]:
    """``workflow`` tasks naming a workflow the project does not have (once every file is registered)."""
    errors: list[GraphError] = []
    known = project.registry.names()
    for graph in graphs_in(project):
        for here, task in _workflow_tasks(graph.definition.get("tasks"), "tasks"):
            name = task.get("workflow")
            if isinstance(name, str) and "${" not in name and name not in project.registry:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(known)})"
                errors.append(GraphError(graph.where(f"{here}.workflow"), f"{here}.workflow",
                                         f'unknown workflow "{name}"{hint}'))
    return errors


def graphs_in(project: Any) -> list[Graph]:
    """The graphs registered in the project's registry (what the build ships)."""
    return [g for d in project.registry if (g := graph_of(d)) is not None]


# -- flareflow run FILE / --env ---------------------------------------------------------------------
def is_graph_file(name: str) -> bool:
    return Path(name).suffix.lower() in GRAPH_SUFFIXES and Path(name).is_file()


def register_file(project: Any, name: str, *, detach: bool = False) -> str:
    """``flareflow run FILE``: check the file and register it (it need not be in a workflow folder);
    the workflow's name. A file outside the workflow folders is known to this command only, so it
    cannot be ``--detach``ed: the background worker (and a later ``resume``) would not find it."""
    path = Path(name).resolve()
    graph, errors = load_checked(path, shown(project, path))
    if errors or graph is None:
        for error in errors[1:]:
            console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise GraphProblems(str(errors[0]))
    if detach and not in_workflow_folders(project, path):
        raise UsageError(f"{name} is not in the project's workflow folders, so only this command knows it: run it "
                         "without --detach, or move it into a workflows folder")
    install_local_ports(project.root, project.state_dir)
    existing = graph.name in project.registry and graph_of(project.registry.get(graph.name))
    if existing and existing.source == graph.source:
        return graph.name
    try:
        register_graph(project.registry, graph)
    except WorkflowDefinitionError as exc:
        raise GraphProblems(str(exc)) from None
    return graph.name


def in_workflow_folders(project: Any, path: Path) -> bool:
    """Whether the task graph at ``path`` is one every command finds (`graph_files`): a file of the workflow
    folders or a listed one. Only its place is looked at; that it is a graph the caller has checked, so the
    folders' other files are not read again."""
    return path.resolve() in [p.resolve() for p, _ in _candidate_files(project)]


def env_is_for_graphs(project: Any, name: str, pairs: list[str] | None = None) -> None:
    """``--env`` sets a task graph's ``${env.X}``: given for a Python workflow it would only land in its
    input, so it is a usage error there. For a graph, a ``pairs`` key that it never reads (no ``${env.KEY}``
    in it, nor in the graphs its ``workflow`` tasks run, which see the same overrides, nor among its
    ``env`` defaults) is a warning on stderr with a did-you-mean: a misspelt key would otherwise just
    not take effect. The run still goes ahead (the value is harmless, and the warning may be wrong for
    a workflow task whose name is an expression, which is why none is given then)."""
    if name not in project.registry:
        return
    graph = graph_of(project.registry.get(name))
    if graph is None:
        raise UsageError(f"--env sets a task graph's ${{env.KEY}}; '{name}' is a Python workflow (pass its values "
                         "with --input, or read os.environ in its steps)")
    read = _env_read(project, graph)
    if read is None:
        return
    for key in env_pairs(pairs):
        if key not in read:
            message = (f"--env {key}: workflow '{name}' never reads ${{env.{key}}}{did_you_mean(key, sorted(read))}; "
                       "the run goes ahead, and nothing in it uses this value")
            err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


def _env_read(project: Any, graph: Graph) -> set[str] | None:
    """The ``${env.X}`` names ``graph`` and the graphs its ``workflow`` tasks run read (their ``env`` defaults
    included), or None when a ``workflow`` task's name is an expression (who knows what that one reads)."""
    read: set[str] = set()
    todo, seen = [graph], {graph.name}
    while todo:
        current = todo.pop()
        read |= env_names(current.definition)
        d = current.definition
        for _, task in _workflow_tasks(d.get("tasks"), "tasks") + _workflow_tasks(d.get("on_failure"), "on_failure"):
            child_name = task.get("workflow")
            if not isinstance(child_name, str) or "${" in child_name:
                return None
            if child_name in seen or child_name not in project.registry:
                continue
            seen.add(child_name)
            found = graph_of(project.registry.get(child_name))
            if found is not None:
                todo.append(found)
    return read


def env_pairs(pairs: list[str] | None) -> dict[str, str]:
    """``--env KEY=VALUE ...`` as a mapping (a later KEY wins)."""
    return key_value_pairs(pairs, "--env", "KEY=VALUE")


def with_env(value: Any, pairs: list[str] | None) -> Any:
    """The run's input with ``--env KEY=VALUE`` overrides under ``$env`` (an object input only)."""
    if not pairs:
        return value
    env = env_pairs(pairs)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise UsageError("--env needs the input to be a JSON object (the overrides go into its \"$env\")")
    return {**value, ENV_KEY: env}


# -- flareflow graph -------------------------------------------------------------------------------
#: What an unnamed task is shown by, per type (its command, its URL, ...), cut to `_SUMMARY` characters.
_SUMMARY_FIELDS = {"shell": ("command",), "http": ("method", "url"), "python": ("function",),
                   "workflow": ("workflow",), "sleep": ("duration",), "wait_event": ("event",),
                   "input": ("prompt",), "docker": ("image",), "database": ("query", "migration"),
                   "data_processor": ("processor",)}
_SUMMARY = 60


def _summary(task: dict[str, Any]) -> str | None:
    """An unnamed task by what it does (``npm run deploy``, ``GET https://...``), or None."""
    values = [str(task[f]) for f in _SUMMARY_FIELDS.get(str(task.get("type")), ()) if task.get(f) is not None]
    text = " ".join(" ".join(values).split())
    return text if len(text) <= _SUMMARY else text[:_SUMMARY - 1] + "…"


def _line(task: dict[str, Any], tag: str = "") -> str:
    label = task.get("name") or task.get("id") or _summary(task) or task.get("type")
    ident = f" ({task['id']})" if task.get("id") and task.get("name") else ""
    when = f"  when {task['when']}" if task.get("when") else ""
    return f"{tag}{label}{ident} [{task.get('type')}]{when}"


def _parts(task: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tasks inside a task (a group's tasks, a conditional's branches, a loop's body), tagged."""
    parts: list[tuple[str, dict[str, Any]]] = []
    if isinstance(task.get("tasks"), list):
        parts += [("", t) for t in task["tasks"] if isinstance(t, dict)]
    for key in ("then", "else", "on_failure"):
        if isinstance(task.get(key), dict):
            parts.append((f"{key}: ", task[key]))
    return parts


def tree(graph: Graph) -> list[str]:
    """The DAG as a tree: each task under the tasks it depends on (``→``; a task with several parents is
    shown in full under the first, as ``↑ name`` under the others), the tasks inside it first."""
    tasks = [t for t in graph.definition["tasks"] if isinstance(t, dict)]
    by_id = {t["id"]: t for t in tasks}
    children: dict[str, list[str]] = {t["id"]: [] for t in tasks}
    roots = []
    for task in tasks:
        deps = task.get("depends_on") or []
        deps = [deps] if isinstance(deps, str) else deps
        if not deps:
            roots.append(task["id"])
        for dep in deps:
            children.setdefault(dep, []).append(task["id"])
    out = [f"{graph.name}  ({graph.source})"]
    seen: set[str] = set()

    def walk(kind: str, item: Any, prefix: str, last: bool, tag: str = "") -> None:
        branch = "└── " if last else "├── "
        if kind == "dep" and item in seen:
            out.append(f"{prefix}{branch}→ ↑ {by_id[item].get('name') or item}")
            return
        task = by_id[item] if kind == "dep" else item
        if kind == "dep":
            seen.add(item)
            tag = "→ " if prefix else ""
        out.append(f"{prefix}{branch}{_line(task, tag)}")
        below: list[tuple[str, Any, str]] = [("part", sub, t) for t, sub in _parts(task)]
        if kind == "dep":
            below += [("dep", kid, "") for kid in children.get(item, [])]
        inner = prefix + ("    " if last else "│   ")
        for index, (k, sub, t) in enumerate(below):
            walk(k, sub, inner, index == len(below) - 1, t)

    for index, root in enumerate(roots):
        walk("dep", root, "", index == len(roots) - 1)
    return out


def mermaid(graph: Graph) -> list[str]:
    """The DAG as a Mermaid flowchart (``flowchart TD``), for docs."""
    out = ["flowchart TD"]

    def node(tid: str, task: dict[str, Any]) -> str:
        label = str(task.get("name") or tid).replace('"', "'")
        return f'    {_mid(tid)}["{label}<br/><small>{task.get("type")}</small>"]'

    for task in graph.definition["tasks"]:
        tid = task["id"]
        if task.get("type") == "parallel":
            out.append(f'    subgraph {_mid(tid)}_group["{task.get("name") or tid!s}"]')
            for sub in task.get("tasks") or []:
                out.append("  " + node(sub["id"], sub))
            out.append("    end")
            out.append(node(tid, task))
            for sub in task.get("tasks") or []:
                out.append(f"    {_mid(sub['id'])} --> {_mid(tid)}")
        else:
            out.append(node(tid, task))
        deps = task.get("depends_on") or []
        for dep in [deps] if isinstance(deps, str) else deps:
            arrow = " -.->|when| " if task.get("when") else " --> "
            out.append(f"    {_mid(dep)}{arrow}{_mid(tid)}")
    return out


def _mid(tid: str) -> str:
    return "t_" + "".join(c if c.isalnum() else "_" for c in tid)


def register(app: typer.Typer) -> None:
    """Add ``create`` and ``graph`` to the CLI."""

    @app.command()
    def graph(
        name: Annotated[str, typer.Argument(help="Workflow name (a task graph) or a graph file.")],
        as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart instead.")] = False,
        project: ProjectOpt = None,
    ) -> None:
        """Print a task graph's DAG as a tree (or as Mermaid for docs)."""
        proj = load_project(project)
        if is_graph_file(name):
            name = guard(lambda: register_file(proj, name))
        defn = guard(lambda: proj.registry.get(name))
        found = graph_of(defn)
        if found is None:
            fail(f"workflow '{name}' is a Python workflow ({defn.location}), not a task graph")
        for line in (mermaid(found) if as_mermaid else tree(found)):
            console.print(escape(line), highlight=False, soft_wrap=True)

    @app.command()
    def create(
        name: Annotated[str, typer.Argument(help="Workflow name (also the file name).")],
        template: Annotated[str, typer.Option("--template", "-t", help="One of: " + ", ".join(TEMPLATES))] = "custom",
        yaml_format: Annotated[bool, typer.Option("--yaml/--json", help="Write YAML (default) or JSON.")] = True,
        project: ProjectOpt = None,
    ) -> None:
        """Write a ready task-graph file into the project's workflows folder."""
        if template not in TEMPLATES:
            fail(f"--template must be one of {', '.join(TEMPLATES)}, got '{template}'", 2)
        if not NAME.match(name):  # it is also the file's name: no spaces, no slashes
            fail(f"'{name}' is not a workflow name: letters, digits and . _ : - (starting with a letter or digit)",
                 2)
        proj = load_project(project, discover=False)
        folder = next(((proj.root / e).resolve() for e in proj.settings.workflows if (proj.root / e).is_dir()),
                      proj.root / "workflows")
        target = folder / f"{name}.{'yaml' if yaml_format else 'json'}"
        if target.exists():
            fail(f"{shown(proj, target)} exists; choose another name")
        try:  # one namespace: a second workflow of that name would stop every command of the project
            from .project import discover_workflows

            discover_workflows(proj, tolerant=True)
        except Exception:  # a project that does not load says so at its next command
            pass
        else:
            if name in proj.registry:
                fail(f"a workflow named '{name}' exists ({proj.registry.get(name).location}); choose another name")
        text = resources.files("flareflow.templates").joinpath("graphs", f"{template}.json").read_text("utf-8")
        data = json.loads(text)
        data["name"] = name
        if yaml_format:
            import yaml

            body = ("# Task graph; format: flareflow/graphs/schema.json (see the README, Task graphs)\n"
                    + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))
        else:
            body = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        graph_obj = Graph(data, shown(proj, target))
        errors = validate_graph(graph_obj)
        if errors:  # pragma: no cover - the templates are tested
            raise FlareflowError(str(errors[0]))
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        console.print(f"  [green]created[/green] {shown(proj, target)}")
        console.print(f"\nNext:\n  flareflow graph {name}\n  flareflow run {name}")

