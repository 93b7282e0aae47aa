"""What ``flareflow build`` adds for AI steps (the golden cases ``ai_steps`` / ``ai_settings`` of
tests/build hold the files): ``[ai] binding = "AI"`` when a workflow calls run.ai or
``[tool.flareflow.ai]`` is set, the ``FLAREFLOW_AI`` var carrying that table, the ``ai-prompt`` import;
nothing of it for a project without AI; ``flareflow`` ships inside the build."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from flareflow.cli.build import BUILD_DIR
from tests.build.cases import CASES
from tests.build.helpers import build_in_process


def _config(name: str, tmp_path: Path) -> tuple[dict[str, object], str, Path]:
    root = CASES[name].make(tmp_path / name)
    build_in_process(root)
    out = root / BUILD_DIR
    return tomllib.loads((out / "wrangler.toml").read_text()), (out / "src" / "entry.py").read_text(), out


def test_a_workflow_calling_run_ai_gets_the_binding(tmp_path: Path) -> None:
    config, entry, out = _config("ai_steps", tmp_path)
    assert config["ai"] == {"binding": "AI"}
    assert "FLAREFLOW_AI" not in config["vars"]  # type: ignore[operator]
    assert "flareflow.ai.builtin" not in entry  # no [tool.flareflow.ai]: no ai-prompt
    assert (out / "python_modules" / "flareflow" / "ai" / "steps.py").exists()


def test_ai_settings_reach_the_worker(tmp_path: Path) -> None:
    config, entry, _ = _config("ai_settings", tmp_path)
    assert config["ai"] == {"binding": "AI"}
    settings = json.loads(config["vars"]["FLAREFLOW_AI"])  # type: ignore[index]
    assert settings == {"base_url": "http://127.0.0.1:11434/v1", "model": "chat", "cache_ttl": 600,
                        "models": {"chat": {"local": "llama3.2", "cloudflare": "@cf/meta/llama-3.1-8b-instruct"}}}
    assert "import flareflow.ai.builtin" in entry and "'ai-prompt'" in entry


def test_no_ai_no_binding(tmp_path: Path) -> None:
    config, entry, _ = _config("all_resources", tmp_path)
    assert "ai" not in config and "FLAREFLOW_AI" not in config.get("vars", {})  # type: ignore[operator]
    assert "flareflow.ai" not in entry


def test_an_own_wrangler_config_is_told_what_ai_needs(tmp_path: Path) -> None:
    case = CASES["ai_settings"]
    own = ('name = "mine"\nmain = "src/entry.py"\ncompatibility_date = "2025-10-01"\n'
           'compatibility_flags = ["python_workers"]\n\n[[durable_objects.bindings]]\nname = "RUNS"\n'
           'class_name = "RunObject"\n\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["RunObject"]\n')
    root = type(case)("own", {**case.files, "wrangler.toml": own,
                              "pyproject.toml": case.files["pyproject.toml"] + "\n[tool.flareflow.resources]\n"
                              "d1 = false\nr2 = false\nkv = false\nqueues = false\n"}).make(tmp_path / "own")
    result = build_in_process(root)
    assert [w for w in result.warnings if "Workers AI binding AI" in w], result.warnings
    assert [w for w in result.warnings if "FLAREFLOW_AI" in w], result.warnings
    fixed = own + '\n[ai]\nbinding = "AI"\n\n[vars]\nFLAREFLOW_AI = "{}"\n'
    (root / "wrangler.toml").write_text(fixed)
    again = build_in_process(root)
    assert not [w for w in again.warnings if "AI" in w], again.warnings
