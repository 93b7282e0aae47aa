"""The pytest plugin as a user meets it: pytest run as a process on a test file of theirs, with the
plugin loaded from its entry point (nothing in the file asks for it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import cli_env

USER_TESTS = '''\
import json
import os
from pathlib import Path

import pytest

from flareflow import Run, workflow

SEEN = Path(os.environ["SEEN_FILE"])


def add(a, b):
    return a + b


@workflow("sleeper")
async def sleeper(run: Run, n: int) -> int:
    total = await run.step("add", add, n, 1)
    await run.sleep("week", "7 days")
    return total


def state_dirs():
    return sorted(p.name for p in Path(os.environ["TMPDIR"]).iterdir() if p.name.startswith("flareflow-test-"))


async def test_first_runs_async(flareflow_workflow):
    wf = flareflow_workflow(sleeper).disable_sleeps()
    assert await wf.run(1) == 2
    SEEN.write_text(json.dumps({"run_id": wf.run_id}))
    assert state_dirs() == []


def test_second_sees_nothing_of_the_first(flareflow_workflow):
    first = json.loads(SEEN.read_text())["run_id"]
    wf = flareflow_workflow("sleeper").disable_sleeps().mock_step_result("add", 40)
    assert wf.run_sync(1) == 40
    assert wf.run_id != first and {e["run_id"] for e in wf.events} == {wf.run_id}
    assert wf.events[0]["seq"] == 1
    assert state_dirs() == []


@pytest.mark.anyio
async def test_anyio_still_owns_its_own_tests():
    import anyio

    await anyio.sleep(0)


def test_a_failure_shows_what_the_run_did(flareflow_workflow):
    wf = flareflow_workflow(sleeper).disable_sleeps()
    wf.run_sync(1)
    assert wf.output == "something else"
'''


def test_the_plugin_gives_a_fixture_runs_async_tests_and_isolates_tests(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_flows.py").write_text(USER_TESTS)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**cli_env(), "TMPDIR": str(scratch), "SEEN_FILE": str(tmp_path / "seen.json")}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert "1 failed, 3 passed" in out, out
    assert "test_a_failure_shows_what_the_run_did" in out
    assert "flareflow sleeper" in out and "status: completed" in out, out  # the fixture's report section
    assert "last events: run.started(), step.started(add)" in out, out
    assert [p for p in os.listdir(scratch) if p.startswith("flareflow-test-")] == []
