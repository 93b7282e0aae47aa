"""A task that fails before a step of its own runs (a python function that does not import, an expression
that does not evaluate, loop items that are not a list) is still a failed step in the events, with its task
id and why, so the live view and the console show it (before, only the run's output JSON said so, and under
``wait_for: any`` the run completed with no sign of it)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import ff

from .helpers import make_project, run_json

GRAPH = {"name": "broken", "tasks": [
    {"id": "calc", "name": "Calculate", "type": "python", "function": "nowhere.at_all:compute"},
    {"id": "each", "name": "Each", "type": "loop", "items": "${input.items}", "then": {"type": "sleep",
                                                                                    "duration": "1ms"}},
    {"id": "group", "type": "parallel", "wait_for": "any", "tasks": [
        {"id": "good", "type": "sleep", "duration": "1ms"},
        {"id": "bad", "name": "Bad value", "type": "wait_event", "event": "${input.missing.deeper}"}]}]}


def test_tasks_that_fail_before_their_step_are_failed_steps_in_the_events(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/broken.json": GRAPH})
    _, events = run_json(root, "broken", "--input", '{"items": 5}')
    failed = {e["task"]: e for e in events if e["type"] == "step.failed"}
    assert set(failed) == {"calc", "each", "bad"}, [e["type"] for e in events]
    assert "cannot import nowhere.at_all" in failed["calc"]["error"]["message"]
    assert "loop items must be a list" in failed["each"]["error"]["message"]
    assert failed["bad"]["name"] == "Bad value"
    assert events[-1]["type"] == "run.failed"  # calc and each failed; the any-group succeeded through "good"
    live = ff("run", "broken", "--input", '{"items": 5}', cwd=root)
    assert "✗ Calculate" in live.stdout and "cannot import nowhere.at_all" in live.stdout, live.stdout
