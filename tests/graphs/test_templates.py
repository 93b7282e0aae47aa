"""``flareflow create NAME --template T`` writes a ready file: every template validates (ours and the
published JSON Schema), appears in the registry, and the ones that need nothing external run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

import flareflow.graphs
from tests.cli.helpers import describe, ff

from .helpers import make_project, output_of, run_json

SCHEMA = json.loads((Path(flareflow.graphs.__file__).parent / "schema.json").read_text(encoding="utf-8"))
TEMPLATES = ("ci-cd", "scheduled", "web-app", "custom")


@pytest.mark.parametrize("template", TEMPLATES)
def test_create_writes_a_valid_file_per_template(tmp_path: Path, template: str) -> None:
    root = make_project(tmp_path, {})
    made = ff("create", f"my-{template}", "--template", template, cwd=root)
    assert made.returncode == 0, describe(made)
    path = root / "workflows" / f"my-{template}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["name"] == f"my-{template}"
    assert list(jsonschema_rs.validator_for(SCHEMA).iter_errors(data)) == []
    checked = ff("validate", cwd=root)  # the shell templates say "local_only": true, so no --local is needed
    assert checked.returncode == 0, describe(checked)
    again = ff("create", f"my-{template}", "--template", template, cwd=root)
    assert again.returncode == 1 and "exists" in again.stderr


def test_the_ci_cd_and_custom_templates_run_as_written(tmp_path: Path) -> None:
    root = make_project(tmp_path, {})
    for template in ("ci-cd", "custom"):
        assert ff("create", template, "--template", template, "--json", cwd=root).returncode == 0
    _, events = run_json(root, "ci-cd")
    out = output_of(events)
    assert out["tasks"]["deploy"]["result"] == "Deployment skipped" and out["skipped"] == ["envs"]
    _, events = run_json(root, "custom")
    assert output_of(events)["tasks"]["after"]["result"] == "the first said: hello"


def test_the_schema_rejects_what_the_validator_rejects(tmp_path: Path) -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    assert not validator.is_valid({"name": "x", "tasks": [{"id": "a", "type": "shell", "comand": "ls"}]})
    assert not validator.is_valid({"name": "x", "tasks": [{"id": "a", "type": "nope"}]})
    assert validator.is_valid({"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "ls",
                                                        "retry": {"attempts": 2, "delay": 10}}]})
