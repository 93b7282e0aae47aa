"""``flareflow new`` scaffolds a ``tests/`` folder that uses `flareflow.testing`, and ``pytest`` passes in
the fresh project: both run as processes, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import cli_env, describe, ff


def test_a_fresh_project_has_tests_and_pytest_passes_in_it(tmp_path: Path) -> None:
    made = ff("new", "shop", cwd=tmp_path)
    assert made.returncode == 0, describe(made)
    root = tmp_path / "shop"
    assert "created tests/test_workflows.py" in made.stdout
    env = {**cli_env(), "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout
    assert not any(p.name.startswith("flareflow-test-") for p in tmp_path.iterdir())  # no leftovers
    assert not (root / ".flareflow").exists()  # the tests never touch the project's own state
