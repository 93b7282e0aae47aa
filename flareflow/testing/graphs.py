"""Task graphs under test: a graph file becomes a workflow of its own registry, and its runs get the
local runtime's task ports (shell, docker, data_processor, http, database).

Ports are process-wide (`flareflow.graphs.ports.install`), so `graph_ports` installs the local ones
only for the duration of one test run and puts back whatever was installed before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

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
