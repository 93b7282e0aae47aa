"""What goes into the build's ``python_modules/``: flareflow's Worker-side code and the user's packages.

Python Workers load pure-Python packages from ``python_modules/`` (as pywrangler vendors them);
anything with compiled code needs a Pyodide build, which PyPI does not ship. So a dependency whose
wheel is not ``none-any`` is refused, by name, before wrangler ever runs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import flareflow

from .errors import UserError

#: The parts of flareflow that run inside a Worker (DESIGN.md: stdlib + workers SDK only).
WORKER_PACKAGES = ("engine", "durable_objects", "worker", "migrations", "console", "graphs", "ai")
_SKIP = {"__pycache__"}
#: The file kinds those packages ship: code, migrations, the API document, the console's files.
_SHIPPED = (".py", ".sql", ".json", ".html", ".js", ".css", ".svg")


class VendorError(UserError):
    """A dependency cannot be vendored; the message names it."""


def flareflow_sources() -> list[tuple[Path, str]]:
    """(source file, path under python_modules/) for flareflow's Worker-side code."""
    root = Path(flareflow.__file__).resolve().parent
    files = [(root / "__init__.py", "flareflow/__init__.py")]
    for package in WORKER_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and not _SKIP & set(path.parts) and path.suffix in _SHIPPED:
                files.append((path, "flareflow/" + path.relative_to(root).as_posix()))
    return files


def _distribution(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower().replace("_", "-") if match else requirement.strip().lower()


def runtime_dependencies(declared: list[str] | None, project_deps: list[str]) -> list[str]:
    """The packages to vendor: the explicit list, or the project's dependencies without flareflow."""
    source = declared if declared is not None else project_deps
    return [dep for dep in source if _distribution(dep) != "flareflow"]


def _is_pure(wheel: Path) -> bool:
    tags = wheel.stem.split("-")
    return len(tags) >= 5 and tags[-2] == "none" and tags[-1] == "any"


def download(dependencies: list[str], cache_root: Path) -> list[Path]:
    """Resolve and download wheels (cached by the requirement list); refuse any that is not pure Python."""
    if not dependencies:
        return []
    digest = hashlib.sha256("\n".join(sorted(dependencies)).encode()).hexdigest()[:16]
    cache = cache_root / f"deps-{digest}"
    done = cache / ".complete"
    if not done.exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--dest", str(cache), *dependencies]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            reason = _pip_reason(proc.stderr)
            raise VendorError(f"cannot vendor {', '.join(dependencies)}: {reason}")
        done.write_text("ok\n")
    wheels = sorted(cache.glob("*.whl"))
    impure = [w for w in wheels if not _is_pure(w)]
    if impure:
        names = ", ".join(sorted({w.name.split("-")[0] for w in impure}))
        raise VendorError(
            f"dependency {names} is not pure Python ({impure[0].name}); Python Workers can only load "
            "pure-Python packages or those built for Pyodide. Remove it from "
            "tool.flareflow.worker.dependencies (or [project].dependencies)"
        )
    return wheels


def _pip_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    for line in lines:
        if line.startswith("ERROR:"):
            if "matching distribution" in line or "satisfies the requirement" in line:
                return line[6:].strip() + " (no pure-Python wheel available)"
            return line[6:].strip()
    return lines[-1] if lines else "pip failed"


def wheel_files(wheel: Path) -> list[tuple[str, bytes]]:
    """(path under python_modules/, content) of one wheel, without its metadata scripts."""
    out = []
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith("/") or ".data/" in name:
                continue
            out.append((name, archive.read(name)))
    return out
