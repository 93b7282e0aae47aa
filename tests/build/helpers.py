"""Shared by the build tests: the real CLI as a subprocess, in-process builds, tree snapshots, wheels."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flareflow.cli import build as build_module
from flareflow.cli.build import BuildResult, build
from flareflow.cli.project import Project, load_project
from flareflow.cli.vendor import flareflow_sources
from flareflow.engine.registry import default_registry

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
FAKE_WRANGLER = HERE / "fake_wrangler.py"
HARNESS_WRANGLER = REPO / "harness" / "node_modules" / ".bin" / "wrangler"

_SCRIPT = Path(sys.executable).parent / "flareflow"
FLAREFLOW: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "flareflow"]
TIMEOUT = 60


# -- the CLI ---------------------------------------------------------------------------------------
def cli_env(**extra: str) -> dict[str, str]:
    """The user's environment with the venv first on PATH, no colours, no bytecode, no leftover overrides."""
    env = dict(os.environ)
    for key in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "COLUMNS", "LINES", "FLAREFLOW_URL",
                "FLAREFLOW_TOKEN", "FLAREFLOW_WRANGLER", "FAKE_WRANGLER_LOG", "FAKE_WRANGLER_STATE",
                "FAKE_WRANGLER_FAIL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        env.pop(key, None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["WRANGLER_SEND_METRICS"] = "false"
    env.update(extra)
    return env


def ff(*args: str, cwd: Path, env: dict[str, str] | None = None,
       timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``flareflow ARGS`` in ``cwd`` to completion, the way a user does."""
    return subprocess.run([*FLAREFLOW, *args], cwd=cwd, env=env or cli_env(), text=True, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stdout + result.stderr, describe(result)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, nothing on stdout, exactly one ``error:`` line on stderr (no traceback)."""
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stdout + result.stderr, describe(result)
    assert result.stdout.strip() == "", describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("error: "), describe(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


# -- projects --------------------------------------------------------------------------------------
def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".flareflow"))
    return target


@contextlib.contextmanager
def isolated_imports(root: Path) -> Iterator[None]:
    """Undo what importing a project's workflows does to this process (sys.path, sys.modules, registry)."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_registry = dict(default_registry._workflows)
    base = str(root.resolve())
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            module = sys.modules[name]
            places = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", []) or [])]
            if any(str(place).startswith(base) for place in places):
                del sys.modules[name]
        default_registry._workflows.clear()
        default_registry._workflows.update(saved_registry)


def build_in_process(root: Path, *, force: bool = False) -> BuildResult:
    """``build(project)`` for the project at ``root``, leaving this process as it was."""
    with isolated_imports(root):
        project = load_project(root, discover=False)
        return build(project, force=force)


def load(root: Path) -> Project:
    return load_project(root, discover=False)


# -- snapshots -------------------------------------------------------------------------------------
def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int, str]]:
    """rel path -> (size, mtime_ns, sha256) of every file, and every folder (as 'rel/')."""
    out: dict[str, tuple[int, int, str]] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in path.parts or any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        if path.is_dir():
            out[rel + "/"] = (0, 0, "")
        else:
            stat = path.stat()
            out[rel] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = [f"changed {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    added = [f"added {k}" for k in sorted(set(after) - set(before))]
    removed = [f"removed {k}" for k in sorted(set(before) - set(after))]
    return changed + added + removed


# -- flareflow's own sources (other people may be editing them while the tests run) -----------------
def flareflow_inputs() -> list[Path]:
    """flareflow's files a build fingerprints: its Worker-side sources, the generator and the templates."""
    own = Path(build_module.__file__).resolve()
    return [f for f, _ in flareflow_sources()] + [own, own.with_name("vendor.py"),
                                                  *sorted(own.parent.parent.glob("templates/*.j2"))]


def flareflow_changed_since(moment_ns: int) -> bool:
    """True if a flareflow source was modified at or after ``moment_ns`` (time.time_ns())."""
    return any(f.stat().st_mtime_ns >= moment_ns for f in flareflow_inputs() if f.exists())


def freeze_flareflow_sources(target: Path) -> list[tuple[Path, str]]:
    """A copy of flareflow's Worker-side sources, as ``flareflow_sources()`` lists them."""
    frozen = []
    for source, rel in flareflow_sources():
        copy = target / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy)
        frozen.append((copy, rel))
    return frozen


# -- wheels ----------------------------------------------------------------------------------------
def make_wheel(folder: Path, name: str, version: str, tag: str, files: dict[str, str]) -> Path:
    """A minimal valid wheel ``name-version-tag.whl`` (METADATA, WHEEL, RECORD) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    pure = tag.endswith("-none-any")
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: flareflow-tests\n"
                                      f"Root-Is-Purelib: {'true' if pure else 'false'}\nTag: {tag}\n")
    record = []
    for rel, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for rel, text in contents.items():
            archive.writestr(rel, text)
    return path


# -- wrangler --------------------------------------------------------------------------------------
def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_harness_wrangler(path: Path | None = None) -> Path:
    """The real wrangler of harness/; a missing one fails the test on CI and skips it elsewhere."""
    path = path or HARNESS_WRANGLER
    problem = None
    if not path.exists():
        problem = f"the pinned wrangler is not installed at {path} (run: cd harness && npm install)"
    elif shutil.which("node") is None:
        problem = "node is not on PATH; the harness wrangler needs Node.js 20+"
    if problem is not None:
        if ci():
            pytest.fail(f"CI=true but {problem}", pytrace=False)
        pytest.skip(problem)
    return path


def fake_wrangler_env(log: Path, **extra: str) -> dict[str, str]:
    """CLI environment with FLAREFLOW_WRANGLER pointing at the recording stand-in."""
    return cli_env(FLAREFLOW_WRANGLER=f"{sys.executable} {FAKE_WRANGLER}", FAKE_WRANGLER_LOG=str(log), **extra)


def read_log(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def normalise_golden(rel: str, text: str) -> str:
    """Replace the machine-specific interpreter in wrangler.toml's [build] command with <PYTHON>."""
    if rel.startswith("wrangler."):
        text = re.sub(r'(?m)^(command = ")(.+?)( -m flareflow build )', r"\1<PYTHON>\3", text)
    return text
