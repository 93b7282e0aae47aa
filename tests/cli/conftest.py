from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .helpers import copy_project, ff


@pytest.fixture(scope="session")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``flareflow new demo``, once per session: the project and what the command printed."""
    base = tmp_path_factory.mktemp("scaffold")
    result = ff("new", "demo", cwd=base)
    return base / "demo", result


@pytest.fixture()
def project(scaffolded: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> Path:
    """A fresh copy of the scaffolded project."""
    source, result = scaffolded
    assert result.returncode == 0, result.stderr
    return copy_project(source, tmp_path / "demo")
