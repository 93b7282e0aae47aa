"""A call's own settings are checked like every other layer's: ``temperature="hot"`` or
``max_tokens=0`` fails the run at the call naming the argument, and no request is sent (was: sent to
the provider as they were)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import standin_server

FLOW = '''\
from typing import Any

from flareflow import Run, workflow


@workflow("tuned-badly")
async def tuned_badly(run: Run, which: str) -> Any:
    if which == "temperature":
        return await run.ai.generate("x", temperature="hot")
    return await run.ai.chat([{"role": "user", "content": "x"}], max_tokens=0)
'''


@pytest.mark.parametrize(("which", "says"), [("temperature", "run.ai.temperature: must be a number >= 0"),
                                             ("max_tokens", "run.ai.max_tokens: must be a positive integer")])
def test_a_bad_call_setting_fails_at_the_call(tmp_path: Path, which: str, says: str) -> None:
    with standin_server() as standin:
        root = write_project(tmp_path / "p", standin.url)
        (root / "workflows" / "tuned_badly.py").write_text(FLOW)
        result = ff("run", "tuned-badly", "--input", json.dumps(which), "--json", cwd=root, timeout=60)
        assert result.returncode == 1, describe(result)
        failed = [json.loads(x) for x in result.stdout.splitlines() if '"run.failed"' in x]
        assert failed and says in failed[0]["error"]["message"], describe(result)
        assert standin.requests == []
