"""The real wrangler 4.86.0 (harness/) accepts every build: ``wrangler deploy --dry-run --outdir`` passes.

Each example project is checked twice: through ``flareflow deploy --dry-run`` with
``FLAREFLOW_WRANGLER`` pointing at the harness wrangler, and by calling that wrangler directly in
``.flareflow/build`` (which has no ``[build]`` step). An ejected project is dry-run in its root, where
wrangler runs its ``[build]`` step (``node sync-workflows.mjs``). The dry runs take a few seconds each,
so they run concurrently once per module. Without the harness wrangler these tests skip, except on CI
(``CI=true``) where they fail.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from flareflow.cli.build import BUILD_DIR

from . import helpers
from .cases import CASES, SCHEDULED
from .helpers import (
    assert_ok,
    build_in_process,
    cli_env,
    copy_project,
    describe,
    diff_snapshots,
    ff,
    flareflow_changed_since,
    require_harness_wrangler,
    snapshot,
    write_tree,
)

PROJECTS = ["scaffold", "all_resources", "no_resources"]
#: worker settings (name, date, routes, vars with quotes and <&>) and cron triggers, in one project
SETTINGS_AND_CRONS = {**CASES["worker_settings"].files, "workflows/scheduled.py": SCHEDULED}
RUNS = [f"{p}-{mode}" for p in PROJECTS for mode in ("deploy", "direct")] + ["settings-direct", "ejected-direct"]
WORKFLOW_MODULES = {"scaffold": ["hello", "onboarding", "report"], "ejected": ["hello", "onboarding", "report"],
                    "settings": ["hello", "scheduled"]}


@dataclass
class DryRun:
    root: Path  # the project
    where: Path  # where wrangler ran
    outdir: Path
    result: subprocess.CompletedProcess[str]
    before: dict[str, tuple[int, int, str]]  # the wrangler folder before the run (direct runs)
    started: int  # time.time_ns() before the project was built


def _wrangler_env(tmp: Path) -> dict[str, str]:
    (tmp / "tmp").mkdir()  # `flareflow deploy --dry-run` bundles into a temporary folder in $TMPDIR (then deletes it)
    return cli_env(FLAREFLOW_WRANGLER=str(helpers.HARNESS_WRANGLER), WRANGLER_LOG_PATH=str(tmp / "wrangler-logs"),
                   TMPDIR=str(tmp / "tmp"))


@pytest.fixture(scope="module")
def dry_runs(scaffold: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, DryRun]:
    base = tmp_path_factory.mktemp("dry-runs")
    env = _wrangler_env(base)
    prepared = time.time_ns()  # the in-process builds below must be what wrangler's [build] step finds
    jobs: dict[str, tuple[Path, Path, list[str], Path]] = {}
    for project in PROJECTS:
        for mode in ("deploy", "direct"):
            key = f"{project}-{mode}"
            root = base / key / "project"
            if project == "scaffold":
                copy_project(scaffold, root)
            else:
                CASES[project].make(root)
            outdir = base / key / "out"
            if mode == "deploy":
                jobs[key] = (root, root, ["flareflow", "deploy", "--dry-run"], outdir)
            else:
                build_in_process(root)
                cmd = [str(helpers.HARNESS_WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir)]
                jobs[key] = (root, root / BUILD_DIR, cmd, outdir)
    root = write_tree(base / "settings-direct" / "project", SETTINGS_AND_CRONS)
    build_in_process(root)
    outdir = base / "settings-direct" / "out"
    jobs["settings-direct"] = (root, root / BUILD_DIR,
                               [str(helpers.HARNESS_WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir)], outdir)
    ejected = copy_project(scaffold, base / "ejected-direct" / "project")
    assert_ok(ff("eject", cwd=ejected))
    outdir = base / "ejected-direct" / "out"
    jobs["ejected-direct"] = (ejected, ejected,
                              [str(helpers.HARNESS_WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir)], outdir)

    def go(key: str) -> DryRun:
        root, where, cmd, outdir = jobs[key]
        if cmd[0] == "flareflow":
            cmd = [*helpers.FLAREFLOW, *cmd[1:]]
        before = snapshot(where, skip=(".wrangler", "node_modules"))
        result = subprocess.run(cmd, cwd=where, env=env, text=True, capture_output=True, timeout=180,
                                stdin=subprocess.DEVNULL)
        return DryRun(root, where, outdir, result, before, prepared)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(go, jobs), strict=True))


def test_require_harness_wrangler_fails_on_ci_and_skips_elsewhere(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "node_modules" / ".bin" / "wrangler"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but the pinned wrangler is not installed"):
        require_harness_wrangler(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="npm install"):
        require_harness_wrangler(missing)


@pytest.mark.parametrize("key", RUNS)
def test_wrangler_dry_run_accepts_the_build(key: str, request: pytest.FixtureRequest) -> None:
    require_harness_wrangler()
    run: DryRun = request.getfixturevalue("dry_runs")[key]
    project, mode = key.rsplit("-", 1)
    result = run.result
    assert_ok(result)
    output = result.stdout + result.stderr
    assert "wrangler 4.86.0" in output, describe(result)
    assert "--dry-run: exiting now." in output, describe(result)
    assert "env.RUNS (RunObject)" in output and "Durable Object" in output, describe(result)
    has_d1 = project != "no_resources"
    assert ("env.INDEX" in output) == has_d1, describe(result)
    assert ("env.PAYLOADS" in output) == has_d1, describe(result)
    assert ("env.DISPATCH" in output) == has_d1, describe(result)
    if project == "settings":
        # vars survive the template's JSON escaping (\u003c...) through wrangler's TOML parser unchanged
        assert 'env.GREETING ("say "hi" <b> & \\ bye")' in output, describe(result)
        assert "env.DISPATCH (edge-flows-dispatch)" in output, describe(result)
    if mode == "deploy":
        assert "✓ dry run:" in result.stdout and "would be uploaded" in result.stdout, describe(result)
        listed = [line.strip() for line in result.stdout.splitlines() if line.startswith("  ")]
        assert "entry.py" in listed and "python_modules/flareflow/worker/cloudflare.py" in listed, listed
        return
    uploaded = {p.relative_to(run.outdir).as_posix() for p in run.outdir.rglob("*") if p.is_file()}
    for rel in ("entry.py", "python_modules/flareflow/__init__.py", "python_modules/flareflow/worker/cloudflare.py",
                "python_modules/flareflow/durable_objects/cloudflare.py"):
        assert rel in uploaded, sorted(uploaded)
    for module in WORKFLOW_MODULES.get(project, ["hello"]):
        assert f"workflows/{module}.py" in uploaded, sorted(uploaded)
    if project == "ejected":
        # its only [build] step is its own copy of the workflow sources into src/ (no flareflow needed)
        assert "Running: node sync-workflows.mjs" in output, describe(result)
        assert "sync-workflows: workflows -> src/ (0 written, 0 removed)" in output, describe(result)
        return
    # the hidden build has no [build] step (flareflow serve rebuilds), and wrangler changed nothing in it
    assert "Running:" not in output, describe(result)
    changes = diff_snapshots(run.before, snapshot(run.where, skip=(".wrangler", "node_modules")))
    if changes and flareflow_changed_since(run.started):
        return  # another process edited flareflow's own sources meanwhile: a rebuild was right
    assert changes == [], describe(result)
