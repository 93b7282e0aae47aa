"""``flareflow create NAME`` refuses, in one line and writing nothing, a name that is not a workflow
name (it is also the file's: no spaces or slashes) and a name the project already has (one namespace:
a second workflow of that name would stop every command), instead of a traceback or a broken project."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import assert_one_error_line, describe, ff

from .helpers import make_project

PYTHON = """\
from flareflow import Run, workflow


@workflow("hello")
async def hello(run: Run) -> str:
    return "hi"
"""


def test_a_name_that_is_not_a_workflow_name_is_one_error_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {})
    for name in ("bad name", "../escape"):
        result = ff("create", name, "--template", "custom", cwd=root)
        assert result.returncode == 2, describe(result)
        assert_one_error_line(result, f"'{name}' is not a workflow name")
    assert list((root / "workflows").iterdir()) == [] and not (root / "escape.yaml").exists()


def test_a_name_the_project_has_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/hello.py": PYTHON, "workflows/nightly.json":
                                   {"name": "nightly", "tasks": [{"id": "s", "type": "sleep", "duration": 1}]}})
    assert_one_error_line(ff("create", "hello", cwd=root), "a workflow named 'hello' exists", "hello.py")
    assert_one_error_line(ff("create", "nightly", "--json", cwd=root), "workflows/nightly.json exists")
    assert_one_error_line(ff("create", "nightly", cwd=root), "a workflow named 'nightly' exists")
    assert not (root / "workflows/hello.yaml").exists()
    assert ff("validate", "--local", cwd=root).returncode == 0
