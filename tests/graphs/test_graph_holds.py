"""A held task-graph run is told what a graph file can do about it: real ``flareflow`` processes on a
project whose graph run is stopped, then meets a changed file (a renamed task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.helpers import Live, describe, ff

from .helpers import make_project

EDIT = """\
name: edit
tasks:
  - id: prep
    type: shell
    command: echo prep
  - id: nap
    type: sleep
    duration: 30s
    depends_on: [prep]
"""


def is_held(event: dict[str, Any]) -> bool:
    return event["type"] == "run.waiting" and event["reason"] == "code"


def napping_graph_run(root: Path, *target: str) -> str:
    """Start a graph run and stop its process during the nap, as a closed terminal would."""
    with Live("run", *target, "--json", cwd=root) as live:
        started = live.wait_event(lambda e: e["type"] == "run.started", what="run.started")
        live.wait_event(lambda e: e["type"] == "run.waiting", what="the nap")
    return str(started["run_id"])


def test_a_renamed_task_id_is_advised_in_graph_terms_by_check_and_the_hold(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/edit.yaml": EDIT})
    run_id = napping_graph_run(root, "edit")
    (root / "workflows" / "edit.yaml").write_text(EDIT.replace("id: prep", "id: prepare")
                                                  .replace("[prep]", "[prepare]"), encoding="utf-8")

    check = ff("check", cwd=root)
    assert check.returncode == 1, describe(check)
    assert "restore task 'prep' in workflows/edit.yaml (now 'prepare'" in check.stdout, describe(check)
    assert f"or cancel it: flareflow runs cancel {run_id}" in check.stdout, describe(check)
    assert "patched" not in check.stdout, describe(check)

    with Live("resume", run_id, "--json", cwd=root) as resume:
        held = resume.wait_event(is_held, what="the hold")
    message = held["message"]
    assert "restore task 'prep' in workflows/edit.yaml (now 'prepare'" in message, held
    assert "or cancel it" in message and "patched" not in message, held
