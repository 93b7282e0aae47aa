"""``flareflow new --template ai``: the AI example runs as scaffolded (its server pointed at the
stand-in), its build binds Workers AI, and ``POST /api/workflow`` exists in it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.helpers import describe, ff

from .standin import standin_server


def test_ai_template_scaffolds_a_working_embedding_example(tmp_path: Path) -> None:
    made = ff("new", "helper", "--template", "ai", cwd=tmp_path)
    assert made.returncode == 0, describe(made)
    root = tmp_path / "helper"
    assert "created workflows/assistant.py" in made.stdout
    next_lines = made.stdout.split("Next:", 1)[1]  # the template's own example comes first, not hello
    assert "flareflow run ask-docs --input" in next_lines and "flareflow run hello" not in next_lines, made.stdout
    pyproject = (root / "pyproject.toml").read_text()
    assert "[tool.flareflow.ai]" in pyproject and "[tool.flareflow.ai.models]" in pyproject
    assert "## AI steps" in (root / "README.md").read_text()
    listed = ff("workflows", "--json", cwd=root)
    assert {"ask-docs", "ai-prompt", "hello"} <= {w["name"] for w in json.loads(listed.stdout)}
    with standin_server() as standin:
        (root / "pyproject.toml").write_text(re.sub(r'base_url = "[^"]+"', f'base_url = "{standin.url}"', pyproject))
        standin.script = ["ok", "ok", "ok", '{"ok": true}']  # two embeddings, the answer, the verdict
        result = ff("run", "ask-docs", "--input", '"How do I retry a step?"', "--json", cwd=root, timeout=60)
        assert result.returncode == 0, describe(result)
        done = next(json.loads(x) for x in result.stdout.splitlines() if '"run.completed"' in x)["output"]
        assert done["ok"] is True and done["answer"].startswith("answer to: Note: ")
        assert [r["body"]["model"] for r in standin.requests] == ["nomic-embed-text", "nomic-embed-text",
                                                                 "llama3.2", "llama3.2"]
    built = ff("build", cwd=root)
    assert built.returncode == 0, describe(built)
    wrangler = (root / ".flareflow" / "build" / "wrangler.toml").read_text()
    assert '[ai]\nbinding = "AI"' in wrangler
    bad = ff("new", "other", "--template", "robots", cwd=tmp_path)
    assert bad.returncode == 2 and "--template" in bad.stderr
