"""``run.ai`` is typed (`flareflow.engine.aicalls.AiCalls`): ``mypy --strict`` accepts user code written
like the README's AI examples and rejects a misspelt method or option, and the one implementation,
`flareflow.ai.steps.RunAi`, has exactly the protocol's signatures."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from flareflow.ai.steps import RunAi
from flareflow.engine.aicalls import AiCalls

USER_CODE = '''\
from typing import Any

from flareflow import Run, workflow


@workflow("triage")
async def triage(run: Run, ticket: dict[str, Any]) -> dict[str, Any]:
    label = await run.ai.generate(f"Label this ticket: {ticket['text']}", system="One word.",
                                  temperature=0.0, max_tokens=8, stream=True)
    parsed = await run.ai.chat([{"role": "user", "content": ticket["text"]}],
                               schema={"type": "object", "properties": {"urgent": {"type": "boolean"}}},
                               cache=False)
    vectors = await run.ai.embed([ticket["text"]], model="@cf/baai/bge-base-en-v1.5")
    return {"label": label, "parsed": parsed, "dims": len(vectors[0])}
'''


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "triage_flow.py").write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"),
                           "triage_flow.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)


def test_mypy_strict_accepts_ai_calls_and_rejects_misspelt_ones(tmp_path: Path) -> None:
    good = mypy(tmp_path, USER_CODE)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = mypy(tmp_path, USER_CODE.replace("run.ai.embed(", "run.ai.embedd(").replace("max_tokens=8", "max_token=8"))
    assert bad.returncode == 1, bad.stdout
    assert '"AiCalls" has no attribute "embedd"' in bad.stdout, bad.stdout
    assert 'Unexpected keyword argument "max_token"' in bad.stdout, bad.stdout


def test_run_ai_has_the_protocols_signatures() -> None:
    for name in ("generate", "chat", "embed"):
        assert inspect.signature(getattr(RunAi, name)) == inspect.signature(getattr(AiCalls, name)), name
