"""Reading task-graph files (``*.json``, ``*.yaml``, ``*.yml``) with the line of every node.

The CLI side only: it imports PyYAML, which the Worker never gets (the build ships the definitions as
JSON, `flareflow.graphs.model.Graph.to_json`). YAML is composed into nodes first, so every JSON path
(``tasks[3].depends_on[0]``) knows its line; a JSON file is parsed by `json` (its semantics) and
composed by PyYAML only for the lines (JSON is YAML), so its errors are located too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .model import Graph, GraphError, child

__all__ = ["GRAPH_SUFFIXES", "GraphFileError", "load_graph_file", "load_graph_text"]

GRAPH_SUFFIXES = (".json", ".yaml", ".yml")


class GraphFileError(ValueError):
    """A file that is not a definition at all (unreadable, not JSON/YAML); ``error`` is located."""

    def __init__(self, error: GraphError) -> None:
        super().__init__(str(error))
        self.error = error


#: The most values a definition may hold once YAML aliases are expanded: nine nested aliases of nine items
#: each already make 43 million (a "billion laughs" file), which would exhaust memory in every later walk.
MAX_VALUES = 100_000


class _TooLarge(Exception):
    pass


def _lines(node: Any, path: str, out: dict[str, int]) -> None:
    """Every JSON path's line; each value counts, so a definition past `MAX_VALUES` stops the walk."""
    if len(out) > MAX_VALUES:
        raise _TooLarge
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            out[child(path, name)] = key.start_mark.line + 1
            _lines(value, child(path, name), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, child(path, index), out)


def _compose(text: str) -> yaml.Node | None:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def load_graph_text(text: str, source: str, *, yaml_syntax: bool) -> Graph:
    """A `Graph` from a file's text (``source``: how messages name the file)."""
    lines: dict[str, int] = {}
    if yaml_syntax:
        try:
            data = yaml.load(text, Loader=_JsonLoader)
            node = _compose(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise GraphFileError(GraphError(where, "", f"not valid YAML: {problem}")) from None
        except RecursionError:
            raise GraphFileError(GraphError(source, "", "not valid YAML: nested too deeply")) from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            msg = getattr(exc, "msg", str(exc))
            raise GraphFileError(GraphError(f"{source}:{line}" if line else source, "",
                                            f"not valid JSON: {msg}")) from None
        except RecursionError:
            raise GraphFileError(GraphError(source, "", "not valid JSON: nested too deeply")) from None
        try:
            node = _compose(text)
        except (yaml.YAMLError, RecursionError):
            node = None  # valid JSON that PyYAML reads otherwise (tabs, say): no lines, same checks
    if node is not None:
        try:
            _lines(node, "", lines)
        except RecursionError:
            lines = {}
        except _TooLarge:
            raise GraphFileError(GraphError(source, "", f"the definition holds more than {MAX_VALUES:,} values "
                                            "(YAML aliases expanded); it is refused")) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise GraphFileError(GraphError(f"{source}:1", "", f"a workflow definition is an object with "
                                        f"\"name\" and \"tasks\", got {kind}"))
    return Graph(data, source, lines)


class _JsonLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML as JSON sees it: timestamps stay strings (``2024-01-01`` is not a date object)."""


_JsonLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


def load_graph_file(path: Path, source: str | None = None) -> Graph:
    """Read and parse one file; `GraphFileError` when it cannot be read or parsed."""
    shown = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GraphFileError(GraphError(shown, "", f"cannot be read ({reason})")) from None
    return load_graph_text(text, shown, yaml_syntax=path.suffix.lower() in (".yaml", ".yml"))
