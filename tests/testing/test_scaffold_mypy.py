"""``mypy --strict .`` passes in a fresh project (default and ``--template ai``), as a user runs it: the
scaffold's ``[tool.mypy]`` maps ``workflows/`` and ``tests/`` (no ``__init__.py``) to the names they
are imported by (was: "Source file found twice under different module names")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import cli_env, describe, ff


@pytest.mark.parametrize("template", ["default", "ai"])
def test_mypy_strict_passes_in_a_fresh_project(tmp_path: Path, template: str) -> None:
    made = ff("new", "shop", "--template", template, cwd=tmp_path)
    assert made.returncode == 0, describe(made)
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "."],
                            cwd=tmp_path / "shop", env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout, result.stdout
