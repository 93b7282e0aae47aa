"""run.ai under `flareflow.testing`: an AI step is mocked by its name like any step (its bare value is
the answer), and an unmocked call in a project without a provider fails naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from flareflow import Run
from flareflow.testing import RunFailed, create_test_workflow


async def flow(run: Run, question: str) -> dict[str, Any]:
    text = await run.ai.generate(question)
    vector = await run.ai.embed(question)
    return {"text": text, "vector": vector}


def test_ai_steps_are_mocked_by_name() -> None:
    wf = create_test_workflow(flow)
    wf.mock_step_result("ai.generate", "mocked")
    wf.mock_step_result("ai.embed", [[1.0, 2.0]])
    assert wf.run_sync("hi") == {"text": "mocked", "vector": [1.0, 2.0]}
    assert wf.steps == ["ai.generate", "ai.embed"]


def test_an_unmocked_call_without_a_provider_names_the_setting() -> None:
    wf = create_test_workflow(flow)
    with pytest.raises(RunFailed) as failed:
        wf.run_sync("hi")
    assert "tool.flareflow.ai.base_url" in str(failed.value.error)
