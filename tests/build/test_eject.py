"""``flareflow eject`` as a user runs it: a complete wrangler project for every resource setting, the
scaffold's CI rewritten for npm, and flareflow's own build commands refusing the ejected root."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from flareflow.cli.build import CI_WORKFLOW, eject_plan

from .helpers import assert_ok, describe, fake_wrangler_env, ff, isolated_imports, load, read_log


@pytest.mark.parametrize("disabled", ["d1", "r2", "kv", "queues"])
def test_eject_works_with_any_resource_disabled(demo: Path, disabled: str) -> None:
    with (demo / "pyproject.toml").open("a") as f:
        f.write(f"\n[tool.flareflow.resources]\n{disabled} = false\n")
    with isolated_imports(demo):
        files = eject_plan(load(demo))
    config = tomllib.loads(files["wrangler.toml"].decode())
    deploy_md = files["DEPLOY.md"].decode()
    scripts = json.loads(files["package.json"])["scripts"]
    named = {"d1": "d1_databases", "r2": "r2_buckets", "kv": "kv_namespaces", "queues": "queues"}
    assert named[disabled] not in config
    assert {"d1": "wrangler d1 create", "r2": "wrangler r2 bucket create", "kv": "wrangler kv namespace create",
            "queues": "wrangler queues create"}[disabled] not in deploy_md
    assert ("predev" in scripts) == (disabled != "d1")
    assert "  (" not in deploy_md and "yet  " not in deploy_md  # no broken rendering


def test_eject_rewrites_the_scaffold_ci_and_flareflow_refuses_the_ejected_root(demo: Path, tmp_path: Path) -> None:
    assert "flareflow deploy" in (demo / CI_WORKFLOW).read_text()
    (demo / ".gitignore").write_text("# mine\nsecret.txt")  # no trailing newline
    result = ff("eject", cwd=demo)
    assert_ok(result)
    assert f"{CI_WORKFLOW} now deploys with npm run deploy" in result.stdout, describe(result)
    ci = (demo / CI_WORKFLOW).read_text()
    assert "npm run deploy" in ci and "flareflow deploy" not in ci and "pip install" not in ci
    assert "${{ secrets.CLOUDFLARE_API_TOKEN }}" in ci
    assert (demo / ".gitignore").read_text().splitlines()[:2] == ["# mine", "secret.txt"]
    entry = (demo / "src" / "entry.py").read_text()
    assert "ejected from flareflow: yours to edit" in entry and "do not edit" not in entry

    log = tmp_path / "wrangler.log"
    for command, npm in (("serve", "npm run dev"), ("deploy", "npm run deploy"), ("build", "npm run dev")):
        refused = ff(command, cwd=demo, env=fake_wrangler_env(log))
        assert refused.returncode == 1, describe(refused)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "was ejected" in errors[0] and npm in errors[0], describe(refused)
    assert read_log(log) == []  # nothing reached wrangler
    assert_ok(ff("eject", cwd=demo))  # a second eject with nothing changed is fine
