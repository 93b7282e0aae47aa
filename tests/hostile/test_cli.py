"""Hostile workflow code through ``flareflow run NAME`` (the embedded runtime in the CLI's process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_no_traceback, assert_one_error_line, describe, ff

from .helpers import raised
from .project import write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "hostile")


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["SystemExit", "KeyboardInterrupt", "Custom"])
def test_run_with_an_exiting_step_fails_the_run_not_the_command(project: Path, name: str) -> None:
    result = ff("run", "exits", "--input", json.dumps({"raise": name, "delay": 0}), cwd=project)
    assert result.returncode == 1, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    assert "failed" in result.stdout and name in result.stdout, describe(result)
    assert "detached" not in result.stderr, describe(result)
    runs = json.loads(ff("runs", "list", "--json", cwd=project).stdout)
    assert [r["status"] for r in runs] == ["failed"], runs
    evs = ndjson(ff("runs", "events", runs[0]["id"], cwd=project).stdout)
    assert [e["attempt"] for e in evs if e["type"] in ("step.retrying", "step.failed")] == [1, 2, 3]


def test_run_with_an_exiting_workflow_body_fails_the_run(project: Path) -> None:
    result = ff("run", "body_exit", "--json", cwd=project)
    assert result.returncode == 1, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    last = ndjson(result.stdout)[-1]
    assert last["type"] == "run.failed" and raised(last["error"]) == ("SystemExit", "4", ["body_exit"]), last


def test_blocking_step_times_out_in_the_cli_too(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    result = ff("run", "blocking", "--json", "--input", json.dumps({"seconds": 3, "log": str(log)}), cwd=project)
    assert result.returncode == 1, describe(result)
    evs = ndjson(result.stdout)
    attempts = [e for e in evs if e["type"] in ("step.retrying", "step.failed")]
    assert [e["error"]["type"] for e in attempts] == ["StepTimeout", "StepTimeout"], attempts
    assert all(e["duration_ms"] < 1500 for e in attempts), attempts
    assert not [e for e in evs if e["type"] == "step.completed"]


def par_durations(project: Path) -> list[float]:
    result = ff("run", "pair", "--json", "--input", json.dumps({"seconds": 0.5}), cwd=project)
    assert result.returncode == 0, describe(result)
    return sorted(e["duration_ms"] for e in ndjson(result.stdout) if e["type"] == "step.completed")


def test_step_threads_setting_bounds_concurrent_sync_steps(tmp_path: Path) -> None:
    default = write_project(tmp_path / "default")
    assert par_durations(default)[-1] < 900  # two threads: the steps overlap
    one = write_project(tmp_path / "one", "\n[tool.flareflow.local]\nstep_threads = 1\n")
    durations = par_durations(one)
    assert durations[0] < 900 <= 950 <= durations[1], durations  # the second waited for the only thread


def test_bad_step_threads_setting_is_one_error_line(tmp_path: Path) -> None:
    project = write_project(tmp_path / "bad", "\n[tool.flareflow.local]\nstep_threads = 0\n")
    assert_one_error_line(ff("run", "quick", cwd=project), "tool.flareflow.local.step_threads")
