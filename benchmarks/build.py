"""Build time of a 100-workflow project: cold build, no-op rebuild, and the CLI for reference.

Setup: a generated project with N workflow modules (default 100), one workflow each (a step, a
docstring; every tenth has a schedule), all four Cloudflare resources enabled, no dependencies.

Measured, --repeat times (median and worst reported):

    cold      build(project) in-process into a fresh .flareflow/build (the folder deleted first; the
              workflow modules dropped from sys.modules and their __pycache__ deleted, so each cold
              build compiles and imports all N again)
    no-op     build(project) again with nothing changed: fingerprint of file stats, no import, no write
    cli cold  `flareflow build --force` as a subprocess (interpreter start + imports + build), for reference
    cli no-op `flareflow build` as a subprocess on the unchanged project, for reference

Targets (in-process): cold < 1 s, no-op < 100 ms.

    python benchmarks/build.py [--workflows 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_env

from flareflow.cli.build import BUILD_DIR, build
from flareflow.cli.project import load_project

COLD_TARGET = 1.0
NOOP_TARGET = 0.100

MODULE = '''\
"""Workflow module {i} of a generated benchmark project."""

from flareflow import Retry, Run, workflow


def work(n: int) -> int:
    return n * {i}


@workflow("flow-{i:03d}"{schedule})
async def flow_{i:03d}(run: Run, n: int = 1) -> dict[str, int]:
    """Generated workflow number {i}."""
    value = await run.step("work", work, n, retry=Retry(limit=2, delay="1s"))
    return {{"value": value}}
'''


def make_project(root: Path, count: int) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench-app"\nversion = "0.1.0"\ndependencies = ["flareflow>=0.1"]\n\n'
        '[tool.flareflow]\nworkflows = ["workflows"]\n', encoding="utf-8")
    for i in range(count):
        schedule = f', schedule="{i % 60} * * * *"' if i % 10 == 0 else ""
        (root / "workflows" / f"flow_{i:03d}.py").write_text(MODULE.format(i=i, schedule=schedule), encoding="utf-8")
    return root


def forget_modules(root: Path) -> None:
    base = str(root)
    for name, module in list(sys.modules.items()):
        places = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", []) or [])]
        if any(str(place).startswith(base) for place in places):
            del sys.modules[name]


def timed_cli(args: list[str], cwd: Path) -> float:
    script = Path(sys.executable).parent / "flareflow"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "flareflow"]
    started = time.perf_counter()
    proc = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"flareflow {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed


def verdict(value: float, target: float) -> str:
    return "PASS" if value < target else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    temp = Path(tempfile.mkdtemp(prefix="flareflow-bench-build-"))
    try:
        print_env(environment(temp))
        root = make_project(temp / "bench-app", args.workflows)
        out = root / BUILD_DIR
        project = load_project(root, discover=False)

        # warm-up: the first build also imports jinja2 and compiles the templates once per process
        build(project)
        files = sum(1 for p in out.rglob("*") if p.is_file())

        cold: list[float] = []
        noop: list[float] = []
        for _ in range(args.repeat):
            shutil.rmtree(out)
            shutil.rmtree(root / "workflows" / "__pycache__", ignore_errors=True)  # compile them again, too
            forget_modules(root)
            started = time.perf_counter()
            result = build(project)
            cold.append(time.perf_counter() - started)
            assert result.changed and len(result.workflows) == args.workflows, result
            started = time.perf_counter()
            again = build(project)
            noop.append(time.perf_counter() - started)
            assert not again.changed and again.written == [], again

        cli_cold = [timed_cli(["build", "--force", "-q"], root) for _ in range(max(1, args.repeat // 2))]
        cli_noop = [timed_cli(["build", "-q"], root) for _ in range(max(1, args.repeat // 2))]
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    print(f"Project: {args.workflows} workflow modules, {files} files in the build, {args.repeat} repeats\n")
    rows = [
        ("cold build (in-process)", cold, COLD_TARGET),
        ("no-op rebuild (in-process)", noop, NOOP_TARGET),
        ("flareflow build --force (CLI)", cli_cold, None),
        ("flareflow build, no-op (CLI)", cli_noop, None),
    ]
    print(f"  {'measurement':<32} {'median':>10} {'worst':>10}   target")
    failed = False
    for label, values, target in rows:
        median, worst = statistics.median(values), max(values)
        if target is None:
            note = "reference (interpreter start + imports)"
        else:
            ok = verdict(median, target)
            failed |= ok == "FAIL"
            note = f"< {target * 1000:.0f} ms  {ok}"
        print(f"  {label:<32} {median * 1000:>8.1f}ms {worst * 1000:>8.1f}ms   {note}")
    print()
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
