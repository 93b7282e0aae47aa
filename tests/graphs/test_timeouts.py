"""A task's ``timeout`` is a number in its type's unit (seconds; ``http``: milliseconds) or a duration with
its unit (``"10s"``, ``"5 minutes"``): ``flareflow validate`` refuses anything else at its line, and a
duration runs as the limit it says (it was a TypeError after the command had started)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs

import flareflow.graphs
from tests.cli.helpers import assert_no_traceback, describe, ff

from .helpers import failure_of, make_project, run_json

SCHEMA = json.loads((Path(flareflow.graphs.__file__).parent / "schema.json").read_text(encoding="utf-8"))


def test_a_timeout_is_a_number_in_the_types_unit_or_a_duration_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("""\
name: t
tasks:
  - {id: a, type: shell, command: "true", timeout: 10s}
  - {id: b, type: shell, command: "true", timeout: 5 minutes}
  - {id: c, type: http, url: "https://example.com", timeout: 2s}
  - {id: d, type: http, url: "https://example.com", timeout: 250}
  - {id: e, type: shell, command: "true", timeout: soon}
  - {id: f, type: shell, command: "true", timeout: true}
  - {id: g, type: http, url: "https://example.com", timeout: "5"}
  - {id: h, type: python, function: "m:f", timeout: 0}
  - {id: i, type: wait_event, event: go, timeout: 1 day}
""", encoding="utf-8")
    result = ff("validate", "--local", "t.yaml", cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert result.stderr.splitlines() == [
        "error: t.yaml:7 tasks[4].timeout: not a duration (invalid duration 'soon': expected e.g. \"30s\", "
        '"5 minutes", "7 days" or a number of seconds)',
        'error: t.yaml:8 tasks[5].timeout: a number of seconds > 0, or a duration with its unit such as "10s" or '
        '"5 minutes", got a boolean',
        'error: t.yaml:9 tasks[6].timeout: a number of milliseconds > 0, or a duration with its unit such as "10s" '
        'or "5 minutes", got "5" (give the unit: "5ms" or "5s")',
        'error: t.yaml:10 tasks[7].timeout: a number of seconds > 0, or a duration with its unit such as "10s" or '
        '"5 minutes", got 0',
    ], result.stderr


def test_a_duration_timeout_on_a_shell_task_runs_and_kills_the_command_in_time(tmp_path: Path) -> None:
    """A string ``timeout`` was a TypeError after the command had started; now it is the limit it says."""
    root = make_project(tmp_path, {"workflows/slow.yaml": """\
name: slow
local_only: true
tasks:
  - {id: quick, type: shell, command: "echo done", timeout: 10s}
  - {id: stuck, type: shell, command: "sleep 30", timeout: "1 second", depends_on: [quick]}
"""})
    result, events = run_json(root, "slow")
    assert result.returncode == 1, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    message = failure_of(events)
    assert "stuck" in message and "timed out after 1s" in message, message
    assert "TypeError" not in result.stdout + result.stderr
    completed = [e for e in events if e["type"] == "step.completed"]
    assert [e["task"] for e in completed] == ["quick"], completed


def test_the_published_schema_takes_a_duration_timeout() -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    assert validator.is_valid({"name": "x", "tasks": [{"id": "a", "type": "sleep", "duration": "1s",
                                                        "timeout": "5 minutes"}]})
