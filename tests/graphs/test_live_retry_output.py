"""A shell task's lines streamed live (``step.output``) are not printed a second time under the
``↻ attempt failed`` or ``✗`` line of that attempt: each line of each attempt appears once."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import describe, ff

from .helpers import make_project

GRAPH = """\
name: flaky
tasks:
  - id: build
    name: Build
    type: shell
    command: "echo compiling; echo broken >&2; exit 3"
    retry: {attempts: 2, delay: 50}
"""


def test_streamed_lines_of_a_failing_task_are_shown_once_per_attempt(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/flaky.yaml": GRAPH})
    result = ff("run", "flaky", cwd=root)
    assert result.returncode == 1, describe(result)
    view = result.stdout + result.stderr
    assert "attempt 1 failed" in view and "✗ Build" in view, describe(result)
    assert view.count("compiling") == 2, describe(result)  # attempt 1 and attempt 2, streamed; not again
    assert view.count("stderr: broken") == 2, describe(result)
