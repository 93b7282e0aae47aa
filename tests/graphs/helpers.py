"""A throwaway project holding task graphs, driven through the real ``flareflow`` command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cli.helpers import describe, ff

PYPROJECT = """\
[project]
name = "graphs-demo"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""


def make_project(root: Path, files: dict[str, Any]) -> Path:
    """``root`` as a project: ``files`` maps a path to text, or to a JSON value (written as JSON)."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    return root


def run_json(root: Path, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str],
                                                                   list[dict[str, Any]]]:
    """``flareflow run ARGS --json``: the process and its NDJSON events."""
    result = ff("run", *args, "--json", cwd=root, timeout=timeout)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip().startswith("{")]
    assert events, describe(result)
    return result, events


def output_of(events: list[dict[str, Any]]) -> Any:
    final = events[-1]
    assert final["type"] == "run.completed", json.dumps(final)
    return final["output"]


def failure_of(events: list[dict[str, Any]]) -> str:
    final = events[-1]
    assert final["type"] == "run.failed", json.dumps(final)
    return str(final["error"]["message"])


def graph(name: str, *tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "tasks": list(tasks)}
