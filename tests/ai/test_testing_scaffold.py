"""``run.ai`` under `flareflow.testing` in a project scaffolded with ``--template ai``, run as a user runs
it (``python -m pytest`` in the project): the scaffold's own test of the AI example (its model calls
mocked) passes with no model server, and an unmocked call fails saying the kit calls no model server
and how to mock the step -- not "set base_url", which the project has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import cli_env, describe, ff

UNMOCKED = '''\
from flareflow.testing import create_test_workflow
from workflows.assistant import ask_docs


def test_unmocked() -> None:
    create_test_workflow(ask_docs).run_sync("hi?")
'''


def pytest_in(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(), "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_ai_template_tests_pass_and_an_unmocked_call_says_how_to_mock(tmp_path: Path) -> None:
    made = ff("new", "helper", "--template", "ai", cwd=tmp_path)
    assert made.returncode == 0, describe(made)
    root = tmp_path / "helper"
    assert "created tests/test_assistant.py" in made.stdout
    assert 'base_url = "http://127.0.0.1:11434/v1"' in (root / "pyproject.toml").read_text()
    result = pytest_in(root, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout, result.stdout  # the default five and the AI example's
    (root / "tests" / "test_unmocked.py").write_text(UNMOCKED)
    result = pytest_in(root, tmp_path, "tests/test_unmocked.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no model server under flareflow.testing" in result.stdout, result.stdout
    assert "wf.mock_step_result('ai.generate'" in result.stdout, result.stdout
    assert "set tool.flareflow.ai.base_url in pyproject.toml" not in result.stdout, result.stdout
    assert not (root / ".flareflow").exists()  # the tests never touch the project's own state
    assert "no running event loop" not in result.stdout, result.stdout  # run_sync's failure stands alone
