"""``flareflow run`` of a task graph at a real terminal: tasks are shown by their names, a shell task's
lines appear while it runs, and an ``input`` task is asked and answered right there."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import Terminal

from .helpers import make_project

GRAPH = """\
name: release
tasks:
  - {id: build, name: Build the bundle, type: shell, command: "echo compiling; sleep 1.5; echo bundled"}
  - {id: ok, name: Release approval, type: input, prompt: "Ship it?", schema: {type: boolean},
     depends_on: [build]}
  - {id: ship, name: Ship, type: shell, command: "echo shipped", when: "${tasks.ok.result}", depends_on: [ok]}
"""


def test_the_live_view_names_tasks_streams_output_and_asks_at_the_terminal(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/release.yaml": GRAPH})
    with Terminal("run", "release", cwd=root) as term:
        screen = term.wait_for("Build the bundle │ compiling")
        assert "bundled" not in screen  # the first line is on the screen while the command still runs
        term.wait_for("Ship it?")
        term.wait_for("[y/n]:")
        term.type("y\r")
        code = term.exit_code(timeout=20)
        screen = term.screen
    assert code == 0, screen
    view = screen.split("✔ completed")[0]  # the live view, before the output is printed
    for line in ("✓ Build the bundle", "bundled", "✓ Ship", "│ shipped", "↳ answer [y/n]: y"):
        assert line in view, screen
    assert view.count("compiling") == 1, screen  # streamed, not printed again at the step's end
    assert view.index("compiling") < view.index("✓ Build the bundle") < view.index("Ship it?")
