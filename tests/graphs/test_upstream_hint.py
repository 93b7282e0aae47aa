"""Reading a nested task that is not upstream: the hint names the top-level task to depend on (the one
that holds it; ``depends_on`` takes top-level ids only), and following the hint makes the file valid."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import assert_one_error_line, describe, ff

from .helpers import graph, make_project

GROUP = {"id": "checks", "type": "parallel", "tasks": [{"id": "unit", "type": "sleep", "duration": 1}]}


def test_the_hint_names_the_task_that_holds_the_nested_one(tmp_path: Path) -> None:
    reader = {"id": "report", "type": "sleep", "duration": "${tasks.unit.result}"}
    root = make_project(tmp_path, {"workflows/g.json": graph("g", GROUP, reader)})
    assert_one_error_line(ff("validate", cwd=root), 'reads task "unit"', '(add "checks" to depends_on)')
    root = make_project(tmp_path, {"workflows/g.json": graph("g", GROUP, {**reader, "depends_on": ["checks"]})})
    result = ff("validate", cwd=root)
    assert result.returncode == 0, describe(result)
