from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from flareflow.cli import build as build_module

from .helpers import FAKE_WRANGLER, assert_ok, copy_project, ff, freeze_flareflow_sources


@pytest.fixture(scope="session")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``flareflow new demo``, once per session (the example project a user starts from)."""
    base = tmp_path_factory.mktemp("scaffold")
    result: subprocess.CompletedProcess[str] = ff("new", "demo", cwd=base)
    assert_ok(result)
    return base / "demo"


@pytest.fixture()
def demo(scaffold: Path, tmp_path: Path) -> Path:
    """A fresh copy of the scaffolded project."""
    return copy_project(scaffold, tmp_path / "demo")


@pytest.fixture(scope="session")
def built_scaffold(scaffold: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scaffold after one ``flareflow build``."""
    root = copy_project(scaffold, tmp_path_factory.mktemp("built") / "demo")
    assert_ok(ff("build", "-q", cwd=root))
    return root


@pytest.fixture()
def built_demo(built_scaffold: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built scaffold, its build included (mtimes preserved)."""
    target = tmp_path / "demo"
    shutil.copytree(built_scaffold, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def _frozen_sources(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    return freeze_flareflow_sources(tmp_path_factory.mktemp("frozen-flareflow"))


@pytest.fixture()
def frozen_flareflow(_frozen_sources: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process builds vendor a copy of flareflow taken at session start, so that someone editing
    flareflow while the tests run cannot turn an expected no-op rebuild into a real one."""
    monkeypatch.setattr(build_module, "flareflow_sources", lambda: list(_frozen_sources))


@pytest.fixture(scope="session", autouse=True)
def _fake_wrangler_is_executable() -> None:
    mode = FAKE_WRANGLER.stat().st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(FAKE_WRANGLER, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
