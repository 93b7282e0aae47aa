"""A run stuck on a retry backoff (sleeps not disabled, no ``advance``): `RunStuck` names the step whose
retry is due and how its attempt failed (was: "a timer at ... (a retry backoff?)"). Run as a user runs
it: ``python -m pytest`` in a project whose test expects the message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import cli_env

WORKFLOW = '''\
from flareflow import Run, workflow


def charge(order: dict) -> dict:
    return order


@workflow("pay")
async def pay(run: Run, order: dict) -> dict:
    return await run.step("charge card", charge, order)
'''

TEST = '''\
import pytest

from flareflow.testing import RunStuck, create_test_workflow
from workflows.pay import pay


def test_stuck_names_the_retry() -> None:
    wf = create_test_workflow(pay)
    wf.mock_step_error("charge card", ConnectionError("card network down"))
    with pytest.raises(RunStuck) as stuck:
        wf.run_sync({"total": 5})
    message = str(stuck.value)
    assert "the retry of step 'charge card' (attempt 1 failed: ConnectionError: card network down)" in message
    assert "wf.disable_sleeps() or wf.advance(...)" in message
'''


def test_run_stuck_on_a_retry_names_the_step(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "workflows").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n\n[tool.flareflow]\n\n'
                                         '[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / "workflows" / "pay.py").write_text(WORKFLOW)
    (root / "tests" / "test_pay.py").write_text(TEST)
    env = {**cli_env(), "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout
