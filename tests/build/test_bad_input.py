"""Bad input ends as one ``error:`` line naming what is wrong, and changes nothing on disk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from flareflow.cli.build import BUILD_DIR

from .helpers import (
    assert_ok,
    assert_one_error_line,
    cli_env,
    describe,
    diff_snapshots,
    fake_wrangler_env,
    ff,
    flareflow_changed_since,
    make_wheel,
    read_log,
    snapshot,
)

BAD_SETTINGS = {
    "unknown-key": ("[tool.flareflow.worker]\nnmae = \"x\"\n", "tool.flareflow.worker.nmae", "unknown setting"),
    "unknown-table": ("[tool.flareflow.resource]\nd1 = false\n", "tool.flareflow.resource", "unknown setting"),
    "date-too-old": ("[tool.flareflow.worker]\ncompatibility_date = \"2025-09-28\"\n",
                     "tool.flareflow.worker.compatibility_date", "2025-09-29 or later"),
    "date-malformed": ("[tool.flareflow.worker]\ncompatibility_date = \"2025-13-01\"\n",
                       "tool.flareflow.worker.compatibility_date", "expected a date"),
    "date-not-a-date": ("[tool.flareflow.worker]\ncompatibility_date = \"yesterday\"\n",
                        "tool.flareflow.worker.compatibility_date", "expected a date"),
    "worker-name-case": ("[tool.flareflow.worker]\nname = \"My_Worker\"\n", "tool.flareflow.worker.name",
                         "lowercase"),
    "worker-name-dash": ("[tool.flareflow.worker]\nname = \"-edge\"\n", "tool.flareflow.worker.name", "dash"),
    "worker-name-long": (f"[tool.flareflow.worker]\nname = \"{'a' * 64}\"\n", "tool.flareflow.worker.name", "1-63"),
    "port-too-high": ("[tool.flareflow.dev]\nport = 65536\n", "tool.flareflow.dev.port", "65535"),
    "port-zero": ("[tool.flareflow.dev]\nport = 0\n", "tool.flareflow.dev.port", "1"),
    "secret-name": ("[tool.flareflow.worker]\nsecrets = [\"1BAD\"]\n", "tool.flareflow.worker.secrets", "1BAD"),
    "var-not-string": ("[tool.flareflow.worker]\nvars = { LIMIT = 3 }\n", "tool.flareflow.worker.vars.LIMIT",
                       "string"),
    "var-reserved": ("[tool.flareflow.worker]\nvars = { FLAREFLOW_PAYLOAD_THRESHOLD = \"1\" }\n",
                     "tool.flareflow.worker.vars.FLAREFLOW_PAYLOAD_THRESHOLD", "payload_threshold"),
    "var-reserved-body": ("[tool.flareflow.worker]\nvars = { FLAREFLOW_MAX_BODY = \"1\" }\n",
                          "tool.flareflow.worker.vars.FLAREFLOW_MAX_BODY", "tool.flareflow.dev.max_body"),
    "threshold-small": ("[tool.flareflow.worker]\npayload_threshold = 10\n",
                        "tool.flareflow.worker.payload_threshold", "256"),
    "resource-type": ("[tool.flareflow.resources]\nd1 = 3\n", "tool.flareflow.resources.d1", ""),
    "invalid-toml": ("[tool.flareflow.worker\nname = \"x\"\n", "pyproject.toml", "invalid TOML"),
}


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("\n" + text)


@dataclass
class Outcome:
    result: subprocess.CompletedProcess[str]
    before: dict[str, tuple[int, int, str]]
    after: dict[str, tuple[int, int, str]]


@pytest.fixture(scope="module")
def bad_settings_runs(built_scaffold: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """``flareflow build`` on a built project whose settings were then broken, every case concurrently."""
    base = tmp_path_factory.mktemp("bad-settings")

    def go(case: str) -> Outcome:
        root = base / case
        shutil.copytree(built_scaffold, root, ignore=shutil.ignore_patterns("__pycache__"))
        _append(root / "pyproject.toml", BAD_SETTINGS[case][0])
        before = snapshot(root)
        result = ff("build", cwd=root)
        return Outcome(result, before, snapshot(root))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(BAD_SETTINGS, pool.map(go, BAD_SETTINGS), strict=True))


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_settings(case: str, bad_settings_runs: dict[str, Outcome]) -> None:
    _, key, message = BAD_SETTINGS[case]
    outcome = bad_settings_runs[case]
    assert ".flareflow/build/wrangler.toml" in outcome.before and ".flareflow/build/src/entry.py" in outcome.before
    line = assert_one_error_line(outcome.result, key, message)
    assert re.match(r"^error: (pyproject\.toml: )?tool\.flareflow|^error: .*pyproject\.toml: invalid TOML", line)
    assert diff_snapshots(outcome.before, outcome.after) == []


def test_bad_settings_stop_deploy_before_wrangler(demo: Path, tmp_path: Path) -> None:
    _append(demo / "pyproject.toml", BAD_SETTINGS["date-too-old"][0])
    log = tmp_path / "wrangler.log"
    before = snapshot(demo)
    assert_one_error_line(ff("deploy", cwd=demo, env=fake_wrangler_env(log)), "compatibility_date")
    assert read_log(log) == []
    assert diff_snapshots(before, snapshot(demo)) == []


@pytest.mark.parametrize(("entry", "needle"), [
    ("missing_mod", "module 'missing_mod' was not found"),
    ("jobs/", "'jobs/' does not exist"),
    ("tasks.py", "'tasks.py' does not exist"),
    ("json", "module 'json' is not inside the project"),
])
def test_missing_workflow_module(entry: str, needle: str, built_demo: Path) -> None:
    pyproject = built_demo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('workflows = ["workflows"]',
                                                      f'workflows = ["workflows", "{entry}"]'))
    before = snapshot(built_demo)
    assert_one_error_line(ff("build", cwd=built_demo), "tool.flareflow.workflows", needle)
    assert diff_snapshots(before, snapshot(built_demo)) == []


def test_dotted_module_entries_build_with_the_console_script(demo: Path) -> None:
    """A module entry (not a folder) resolves against the project root, not the console script's sys.path."""
    (demo / "jobs").mkdir()
    (demo / "jobs" / "__init__.py").write_text("")
    (demo / "jobs" / "nightly.py").write_text(
        "from flareflow import workflow\n\n\n@workflow('nightly', schedule='0 3 * * *')\n"
        "async def nightly(run):\n    return 1\n")
    (demo / "tasks.py").write_text("from flareflow import workflow\n\n\n@workflow('task')\nasync def task(run):\n"
                                   "    return 1\n")
    pyproject = demo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('workflows = ["workflows"]',
                                                      'workflows = ["workflows", "jobs.nightly", "tasks"]'))
    result = ff("build", cwd=demo)
    assert_ok(result)
    assert "built 5 workflow(s)" in result.stdout, describe(result)
    out = demo / BUILD_DIR
    for rel in ("src/jobs/__init__.py", "src/jobs/nightly.py", "src/tasks.py"):
        assert (out / rel).exists(), rel
    entry = (out / "src" / "entry.py").read_text()
    assert "import jobs.nightly  #" in entry and "import tasks  #" in entry


@pytest.mark.parametrize(("schedule", "needle"), [
    ("0 25 * * *", "hour: 25 is outside 0-23"),
    ("*/5 * * *", "has 4 fields"),
    ("0 9 * * MONDAY", "day of week: 'MONDAY'"),
])
def test_cron_typo_names_the_workflow(schedule: str, needle: str, built_demo: Path) -> None:
    (built_demo / "workflows" / "nightly.py").write_text(
        f"from flareflow import workflow\n\n\n@workflow('nightly-report', schedule={schedule!r})\n"
        "async def nightly(run):\n    return 1\n")
    before = snapshot(built_demo)
    line = assert_one_error_line(ff("build", cwd=built_demo), "workflow 'nightly-report'", schedule, needle)
    assert "invalid schedule" in line
    assert diff_snapshots(before, snapshot(built_demo)) == []


# -- dependencies --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "purepkg", "1.0", "py3-none-any",
               {"purepkg/__init__.py": "VALUE = 'pure'\n", "purepkg/util.py": "def f():\n    return 1\n"})
    abi = f"cp{sys.version_info.major}{sys.version_info.minor}"
    make_wheel(folder, "nativepkg", "1.0", f"{abi}-{abi}-manylinux_2_17_x86_64",
               {"nativepkg/__init__.py": "", "nativepkg/_speedups.cpython-311-x86_64-linux-gnu.so": "\0"})
    return folder


def _offline_env(wheelhouse: Path) -> dict[str, str]:
    return cli_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))


def _depend_on(demo: Path, *deps: str, setting: bool = False) -> None:
    pyproject = demo / "pyproject.toml"
    listed = ", ".join(f'"{d}"' for d in deps)
    if setting:
        _append(pyproject, f"[tool.flareflow.worker]\ndependencies = [{listed}]\n")
    else:
        pyproject.write_text(pyproject.read_text().replace('dependencies = ["flareflow>=0.1"]',
                                                          f'dependencies = ["flareflow>=0.1", {listed}]'))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake native wheel is tagged manylinux")
def test_native_dependency_is_refused_by_name(built_demo: Path, wheelhouse: Path) -> None:
    _depend_on(built_demo, "purepkg", "nativepkg")
    before = snapshot(built_demo, skip=(".flareflow/cache",))
    line = assert_one_error_line(ff("build", cwd=built_demo, env=_offline_env(wheelhouse)), "dependency nativepkg",
                                 "not pure Python", "nativepkg-1.0-cp")
    assert "purepkg" not in line.split("Remove")[0]
    assert diff_snapshots(before, snapshot(built_demo, skip=(".flareflow/cache",))) == []


def test_unavailable_dependency_is_named(built_demo: Path, wheelhouse: Path) -> None:
    _depend_on(built_demo, "nosuchpkg>=2", setting=True)
    before = snapshot(built_demo, skip=(".flareflow/cache",))
    assert_one_error_line(ff("build", cwd=built_demo, env=_offline_env(wheelhouse)), "nosuchpkg")
    assert diff_snapshots(before, snapshot(built_demo, skip=(".flareflow/cache",))) == []


@pytest.mark.parametrize("setting", [False, True], ids=["project-dependencies", "worker-dependencies"])
def test_pure_dependency_is_vendored(setting: bool, demo: Path, wheelhouse: Path) -> None:
    _depend_on(demo, "purepkg==1.0", setting=setting)
    result = ff("build", cwd=demo, env=_offline_env(wheelhouse))
    assert_ok(result)
    modules = demo / BUILD_DIR / "python_modules"
    assert (modules / "purepkg" / "__init__.py").read_text() == "VALUE = 'pure'\n"
    assert (modules / "purepkg" / "util.py").exists()
    assert not (modules / "flareflow-0.1.0.dist-info").exists()  # flareflow itself comes from its sources
    assert (modules / "flareflow" / "__init__.py").exists()
    # cached: a forced rebuild needs no index at all
    again = ff("build", "--force", cwd=demo, env=cli_env(PIP_NO_INDEX="1"))
    assert_ok(again)
    assert (modules / "purepkg" / "__init__.py").exists()


# -- eject -----------------------------------------------------------------------------------------
def test_eject_refuses_to_overwrite(demo: Path) -> None:
    (demo / "wrangler.toml").write_text('name = "mine"\n')
    (demo / "package.json").write_text("{}\n")
    (demo / "src").mkdir()
    (demo / "src" / "entry.py").write_text("# my own entry\n")
    before = snapshot(demo)
    line = assert_one_error_line(ff("eject", cwd=demo), "would overwrite 3 existing file(s)", "package.json",
                                 "src/entry.py", "wrangler.toml", "nothing was written", "--force")
    assert "DEPLOY.md" not in line and "python_modules" not in line
    assert diff_snapshots(before, snapshot(demo)) == []
    assert not (demo / "DEPLOY.md").exists() and not (demo / "python_modules").exists()


# -- incremental builds -----------------------------------------------------------------------------
def test_unchanged_project_is_up_to_date_and_touch_rebuilds(demo: Path) -> None:
    out = demo / BUILD_DIR
    first = ff("build", cwd=demo)
    assert_ok(first)
    assert "built 3 workflow(s)" in first.stdout and "0 removed" in first.stdout, describe(first)
    hello = demo / "workflows" / "hello.py"
    for attempt in range(3):  # again if someone edited flareflow itself meanwhile (a rebuild is right then)
        started = time.time_ns()
        assert_ok(ff("build", cwd=demo))
        before = snapshot(out)
        second = ff("build", cwd=demo)
        assert_ok(second)
        stable = second.stderr == "" and "build is up to date" in second.stdout and snapshot(out) == before
        if stable or attempt == 2 or not flareflow_changed_since(started):
            break
    assert "build is up to date" in second.stdout and second.stderr == "", describe(second)
    assert diff_snapshots(before, snapshot(out)) == []  # nothing rewritten: mtimes unchanged

    for attempt in range(3):
        started = time.time_ns()
        assert_ok(ff("build", cwd=demo))
        before = snapshot(out)
        stat = hello.stat()
        os.utime(hello, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
        third = ff("build", cwd=demo)
        assert_ok(third)
        changes = diff_snapshots(before, snapshot(out))
        stable = "0 file(s) written" in third.stdout and changes == ["changed flareflow-build.json"]
        if stable or attempt == 2 or not flareflow_changed_since(started):
            break
    assert "built 3 workflow(s)" in third.stdout and "0 file(s) written" in third.stdout, describe(third)
    # same content: only the build's own record changed
    assert changes == ["changed flareflow-build.json"]
