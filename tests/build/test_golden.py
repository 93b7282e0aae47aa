"""Golden files of the build for several settings, and what the generated wrangler.toml must contain.

Regenerate the goldens after an intended change with::

    UPDATE_GOLDEN=1 python -m pytest tests/build/test_golden.py -p no:cacheprovider

"""

from __future__ import annotations

import ast
import json
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from flareflow.cli.build import BUILD_DIR, MANIFEST

from .cases import CASES, WORKER_VARS, Case
from .helpers import GOLDEN, build_in_process, normalise_golden, snapshot

UPDATE = os.environ.get("UPDATE_GOLDEN", "").strip().lower() in ("1", "true", "yes")
GOLDEN_FILES = ("src/entry.py", "package.json")


def _built(case: Case, tmp_path: Path) -> tuple[Path, Any]:
    root = case.make(tmp_path / case.name)
    result = build_in_process(root)
    assert result.changed
    return root / BUILD_DIR, result


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    out, _ = _built(case, tmp_path)
    mismatched = []
    for rel in (case.config, *GOLDEN_FILES):
        actual = normalise_golden(rel, (out / rel).read_text(encoding="utf-8"))
        golden = GOLDEN / name / rel
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(actual, encoding="utf-8")
            continue
        assert golden.exists(), f"no golden {golden}; run with UPDATE_GOLDEN=1 to create it"
        if golden.read_text(encoding="utf-8") != actual:
            mismatched.append((rel, golden.read_text(encoding="utf-8"), actual))
    for rel, expected, actual in mismatched:
        assert actual == expected, f"{name}/{rel} differs from its golden (UPDATE_GOLDEN=1 regenerates)"


def _config(case: Case, out: Path) -> dict[str, Any]:
    text = (out / case.config).read_text(encoding="utf-8")
    return tomllib.loads(text) if case.config.endswith(".toml") else {}


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c.warnings))
def test_generated_wrangler_toml(name: str, tmp_path: Path) -> None:
    """The generated wrangler.toml parses and declares the DO, its SQLite migration, the resources, the crons."""
    case = CASES[name]
    out, result = _built(case, tmp_path)
    assert result.warnings == []
    config = _config(case, out)
    assert config["main"] == "src/entry.py"
    assert "python_workers" in config["compatibility_flags"]
    assert config["durable_objects"]["bindings"] == [{"name": "RUNS", "class_name": "RunObject"}]
    assert config["migrations"] == [{"tag": "v1", "new_sqlite_classes": ["RunObject"]}]
    # no [build] step: `flareflow serve` watches and rebuilds itself (wrangler's custom build reruns at start)
    assert "build" not in config
    res = case.resources
    if "d1" in res:
        assert config["d1_databases"] == [{"binding": "INDEX", "database_name": res["d1"]["name"],
                                           "database_id": res["d1"]["id"], "migrations_dir": "migrations/index"}]
        shipped = resources.files("flareflow.migrations").joinpath("index").iterdir()
        assert sorted(p.name for p in (out / "migrations" / "index").iterdir()) == \
            sorted(p.name for p in shipped if p.name.endswith(".sql"))
    else:
        assert "d1_databases" not in config
        assert not (out / "migrations").exists()
    if "r2" in res:
        assert config["r2_buckets"] == [{"binding": "PAYLOADS", "bucket_name": res["r2"]["name"]}]
    else:
        assert "r2_buckets" not in config
    if "kv" in res:
        assert config["kv_namespaces"] == [{"binding": "CACHE", "id": res["kv"]["id"]}]
    else:
        assert "kv_namespaces" not in config
    if "queues" in res:
        queue, dlq = res["queues"]["name"], res["queues"]["dlq"]
        assert config["queues"]["producers"] == [{"binding": "DISPATCH", "queue": queue}]
        [consumer] = config["queues"]["consumers"]
        assert consumer["queue"] == queue and consumer["dead_letter_queue"] == dlq
    else:
        assert "queues" not in config
    if case.crons:
        assert config["triggers"]["crons"] == case.crons
    else:
        assert "triggers" not in config
    # the build's own record of what it did
    record = json.loads((out / MANIFEST).read_text())
    assert record["workflows"] == result.workflows
    assert set(record["files"]) == {p for p in snapshot(out) if not p.endswith("/") and p != MANIFEST}


def test_worker_settings_reach_wrangler_toml(tmp_path: Path) -> None:
    out, _ = _built(CASES["worker_settings"], tmp_path)
    config = tomllib.loads((out / "wrangler.toml").read_text())
    assert config["name"] == "edge-flows"
    assert config["compatibility_date"] == "2026-01-15"
    assert config["routes"] == ["example.com/api/*", "api.example.com/*"]
    assert config["vars"] == {"FLAREFLOW_PAYLOAD_THRESHOLD": "4096", "FLAREFLOW_MAX_BODY": "65536", **WORKER_VARS}
    package = json.loads((out / "package.json").read_text())
    assert package["name"] == "edge-flows"
    assert package["devDependencies"] == {"wrangler": "4.86.0"}


def test_worker_secrets_are_declared(tmp_path: Path) -> None:
    out, _ = _built(CASES["worker_settings"], tmp_path)
    config = tomllib.loads((out / "wrangler.toml").read_text())
    assert set(config.get("secrets", {}).get("required", [])) >= {"STRIPE_KEY", "SLACK_TOKEN"}


def test_default_worker_name_is_the_slugified_project_name(tmp_path: Path) -> None:
    case = CASES["worker_settings"]
    files = dict(case.files)
    files["pyproject.toml"] = files["pyproject.toml"].replace('name = "edge-flows"\n', "")
    root = Case("slug", files).make(tmp_path / "slug")
    build_in_process(root)
    config = tomllib.loads((root / BUILD_DIR / "wrangler.toml").read_text())
    assert config["name"] == "settings-app"
    assert config["d1_databases"][0]["database_name"] == "settings-app-index"


@pytest.mark.parametrize("name", ["crons"])
def test_entry_imports_and_manifest(name: str, tmp_path: Path) -> None:
    """The entry imports every workflow module once and carries the manifest of every workflow."""
    out, result = _built(CASES[name], tmp_path)
    tree = ast.parse((out / "src" / "entry.py").read_text())
    imports = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    assert imports == ["workflows.more", "workflows.scheduled"]
    manifest = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "MANIFEST" for t in node.targets))
    value = ast.literal_eval(manifest)
    assert sorted(value) == result.workflows == ["a-every-five", "b-weekly", "c-also-every-five",
                                                 "d-unscheduled", "e-monthly", "f-spaced-every-five"]
    assert value["c-also-every-five"]["schedule"] == "*/5 * * * *"
    assert value["d-unscheduled"] == {"description": "", "input_required": False, "schedule": None,
                                      "takes_input": True}
    for rel in ("src/workflows/scheduled.py", "src/workflows/more.py"):
        assert (out / rel).read_bytes() == (tmp_path / name / rel.removeprefix("src/")).read_bytes()


def test_entry_imports_resolve_inside_the_build(tmp_path: Path) -> None:
    """Every module the generated entry imports is shipped: in src/ (workflows) or python_modules/ (flareflow)."""
    out, _ = _built(CASES["all_resources"], tmp_path)
    tree = ast.parse((out / "src" / "entry.py").read_text())
    modules = [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module]
    modules += [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    missing = []
    for module in modules:
        rel = module.replace(".", "/")
        candidates = [f"{base}/{rel}.py" for base in ("src", "python_modules")]
        candidates += [f"{base}/{rel}/__init__.py" for base in ("src", "python_modules")]
        if not any((out / c).exists() for c in candidates):
            missing.append(module)
    assert missing == []


@pytest.mark.usefixtures("frozen_flareflow")
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.warnings))
def test_user_override(name: str, tmp_path: Path) -> None:
    """A wrangler config in the project root is copied as is; each missing binding gets its own warning."""
    case = CASES[name]
    out, result = _built(case, tmp_path)
    root = tmp_path / name
    assert (out / case.config).read_bytes() == (root / case.config).read_bytes()
    other = "wrangler.jsonc" if case.config == "wrangler.toml" else "wrangler.toml"
    assert not (out / other).exists()
    assert len(result.warnings) == len(case.warnings), result.warnings
    for needle in case.warnings:
        assert [w for w in result.warnings if needle in w and case.config in w], (needle, result.warnings)
    for needle in case.not_warned:
        assert not [w for w in result.warnings if needle in w], (needle, result.warnings)
    # the entry and the sources are generated all the same
    assert (out / "src" / "entry.py").exists() and (out / "src" / "workflows" / "hello.py").exists()
    # a no-op rebuild reports the same warnings
    again = build_in_process(root)
    assert not again.changed and again.warnings == result.warnings


def test_switching_to_an_override_removes_the_generated_config(tmp_path: Path) -> None:
    case = CASES["override_jsonc"]
    files = {k: v for k, v in case.files.items() if k != "wrangler.jsonc"}
    root = Case("switch", files).make(tmp_path / "switch")
    out = root / BUILD_DIR
    build_in_process(root)
    assert (out / "wrangler.toml").exists()
    (root / "wrangler.jsonc").write_text(case.files["wrangler.jsonc"])
    result = build_in_process(root)
    assert "wrangler.toml" in result.removed and "wrangler.jsonc" in result.written
    assert not (out / "wrangler.toml").exists()
    (root / "wrangler.jsonc").unlink()
    result = build_in_process(root)
    assert "wrangler.jsonc" in result.removed and "wrangler.toml" in result.written
