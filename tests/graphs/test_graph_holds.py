"""A held task-graph run is told what a graph file can do about it: real ``flareflow`` processes on a
project whose graph run is stopped, then meets a changed file (a renamed task)."""

from __future__ import annotations

import shutil
import signal
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


SLOW = "name: slowx\ntasks:\n  - id: nap\n    type: sleep\n    duration: 3s\n"


def test_an_outside_graph_file_stopped_midway_says_what_resume_needs_and_its_hold_names_the_file(
        tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/edit.yaml": EDIT})
    outside = tmp_path / "elsewhere" / "slow.yaml"
    outside.parent.mkdir()
    outside.write_text(SLOW, encoding="utf-8")
    with Live("run", "../elsewhere/slow.yaml", cwd=root) as live:
        live.wait_line(lambda line: "sleeping" in line, what="the nap")
        live.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert live.finish() == 130, live.stderr
    said = " ".join(live.stderr.split())
    assert "continue it with flareflow resume" in said, said
    assert ("../elsewhere/slow.yaml is outside the project's workflow folders (workflows/), so flareflow resume "
            "cannot find workflow 'slowx' on its own: move the file there first") in said, said

    with Live("resume", "--json", cwd=root) as resume:
        held = resume.wait_event(is_held, what="the hold")
        assert "unknown workflow 'slowx'" in held["message"] and str(outside) in held["message"], held
        assert "held until that file is in workflows/" in held["message"], held
        shutil.move(outside, root / "workflows" / "slow.yaml")  # what the message says: the run continues
        done = resume.wait_event(lambda e: e["type"] in ("run.completed", "run.failed"), timeout=30,
                                 what="the run to finish")
        assert done["type"] == "run.completed", done
