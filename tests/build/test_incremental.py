"""Rebuilds write only what changed, remove what is gone, keep wrangler's and npm's own files."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import pytest

from flareflow.cli.build import BUILD_DIR, MANIFEST, BuildError, eject_plan

from .cases import CASES, OVERRIDE_TOML
from .helpers import (
    build_in_process,
    diff_snapshots,
    ff,
    flareflow_changed_since,
    isolated_imports,
    load,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("frozen_flareflow")


def test_no_op_rebuild_writes_nothing(demo: Path) -> None:
    first = build_in_process(demo)
    assert first.changed and first.removed == [] and first.warnings == []
    assert first.workflows == ["hello", "onboarding", "report"]
    assert "wrangler.toml" in first.written and "src/entry.py" in first.written
    before = snapshot(demo / BUILD_DIR)
    again = build_in_process(demo)
    assert not again.changed and again.written == [] and again.workflows == first.workflows
    assert diff_snapshots(before, snapshot(demo / BUILD_DIR)) == []
    forced = build_in_process(demo, force=True)
    assert forced.changed and forced.written == [] and forced.removed == []
    assert diff_snapshots(before, snapshot(demo / BUILD_DIR)) == []


def test_editing_a_workflow_rewrites_only_its_copy(demo: Path) -> None:
    build_in_process(demo)
    hello = demo / "workflows" / "hello.py"
    hello.write_text(hello.read_text() + "\n# a comment\n")
    result = build_in_process(demo)
    assert result.written == ["src/workflows/hello.py"]
    # a changed docstring changes the manifest in the entry too
    hello.write_text(hello.read_text().replace('"""Greets someone; completes with no input."""',
                                               '"""Greets anyone."""'))
    result = build_in_process(demo)
    assert sorted(result.written) == ["src/entry.py", "src/workflows/hello.py"]
    assert "'description': 'Greets anyone.'" in (demo / BUILD_DIR / "src" / "entry.py").read_text()


def test_deleting_a_workflow_removes_it_and_its_cron(demo: Path) -> None:
    build_in_process(demo)
    out = demo / BUILD_DIR
    assert tomllib.loads((out / "wrangler.toml").read_text())["triggers"]["crons"] == ["0 9 * * 1"]
    (demo / "workflows" / "report.py").unlink()
    result = build_in_process(demo)
    assert result.removed == ["src/workflows/report.py"]
    assert sorted(result.written) == ["src/entry.py", "wrangler.toml"]
    assert "triggers" not in tomllib.loads((out / "wrangler.toml").read_text())
    assert "report" not in json.loads((out / MANIFEST).read_text())["workflows"]


def test_rebuild_keeps_wrangler_and_npm_state_and_removes_strays(demo: Path) -> None:
    build_in_process(demo)
    out = demo / BUILD_DIR
    kept = [out / "node_modules" / ".bin" / "wrangler", out / ".wrangler" / "tmp" / "bundle.js",
            out / "package-lock.json"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (out / "stray" / "deep").mkdir(parents=True)
    (out / "stray" / "deep" / "old.py").write_text("x")
    (out / "src" / "old_module.py").write_text("x")
    result = build_in_process(demo, force=True)
    assert sorted(result.removed) == ["src/old_module.py", "stray/deep/old.py"]
    assert all(path.exists() for path in kept)
    assert not (out / "stray").exists()  # emptied folders go too


def test_resource_ids_from_resources_json(demo: Path) -> None:
    build_in_process(demo)
    ids = {"d1": {"demo-index": "9a8b7c6d-1234-4abc-9def-0123456789ab"},
           "kv": {"demo-cache": "00112233445566778899aabbccddeeff"}}
    (demo / ".flareflow" / "resources.json").write_text(json.dumps(ids))
    result = build_in_process(demo)
    assert result.written == ["wrangler.toml"]
    config = tomllib.loads((demo / BUILD_DIR / "wrangler.toml").read_text())
    assert config["d1_databases"][0]["database_id"] == "9a8b7c6d-1234-4abc-9def-0123456789ab"
    assert config["kv_namespaces"][0]["id"] == "00112233445566778899aabbccddeeff"


@pytest.mark.parametrize(("setup", "needle"), [
    ("resources-json", "resources.json: not valid JSON"),
    ("two-overrides", "both wrangler.toml and wrangler.jsonc"),
    ("bad-override", "wrangler.toml: cannot be parsed"),
])
def test_build_errors_leave_the_build_alone(setup: str, needle: str, demo: Path) -> None:
    build_in_process(demo)
    before = snapshot(demo / BUILD_DIR)
    if setup == "resources-json":
        (demo / ".flareflow" / "resources.json").write_text("{not json")
    elif setup == "two-overrides":
        (demo / "wrangler.toml").write_text(OVERRIDE_TOML)
        (demo / "wrangler.jsonc").write_text("{}")
    else:
        (demo / "wrangler.toml").write_text("name = \n")
    with pytest.raises(BuildError, match=needle):
        build_in_process(demo)
    assert diff_snapshots(before, snapshot(demo / BUILD_DIR)) == []


def test_eject_plan_is_standalone(demo: Path) -> None:
    (demo / "wrangler.toml").write_text(OVERRIDE_TOML)  # ignored by eject: it writes its own
    with isolated_imports(demo):
        files = eject_plan(load(demo))
    config = tomllib.loads(files["wrangler.toml"].decode())
    # no flareflow needed afterwards: the only [build] step is the project's own copy script
    assert config["build"] == {"command": "node sync-workflows.mjs", "watch_dir": ["workflows"]}
    assert config["name"] == "demo" and config["main"] == "src/entry.py"
    assert {"src/entry.py", "package.json", "DEPLOY.md", "src/workflows/hello.py", "sync-workflows.mjs",
            ".dev.vars.example", ".gitignore",
            "python_modules/flareflow/worker/cloudflare.py", "migrations/index/0001_init.sql"} <= set(files)
    assert not [rel for rel in files if rel.startswith(".flareflow") or rel == MANIFEST]
    scripts = json.loads(files["package.json"])["scripts"]
    assert scripts == {"predev": "wrangler d1 migrations apply INDEX --local", "dev": "wrangler dev",
                       "predeploy": "wrangler d1 migrations apply INDEX --remote", "deploy": "wrangler deploy"}
    deploy_md = files["DEPLOY.md"].decode()
    for needle in ("npm run dev", "npm run deploy", "cp -n .dev.vars.example .dev.vars",
                   "Edit the workflows in `workflows`"):
        assert needle in deploy_md, deploy_md
    assert b"FLAREFLOW_TOKEN=" in files[".dev.vars.example"]
    ignored = files[".gitignore"].decode().splitlines()
    assert {"node_modules/", ".dev.vars", ".wrangler/", "/src/workflows"} <= set(ignored)


def test_override_case_in_process_matches_cli_warnings(tmp_path: Path) -> None:
    """The same override warnings reach the user on stderr, one ``warning:`` line each."""
    case = CASES["override_toml"]
    root = case.make(tmp_path / "override")
    result = ff("build", cwd=root)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == len(case.warnings) and all(w.startswith("warning: ") for w in warnings), warnings
    for needle in case.warnings:
        assert [w for w in warnings if needle in w]
    # repeated on a no-op rebuild, which still says it is up to date
    started = time.time_ns()
    again = ff("build", cwd=root)
    assert "up to date" in again.stdout or flareflow_changed_since(started), again.stdout
    assert [line for line in again.stderr.splitlines() if line.strip()] == warnings
