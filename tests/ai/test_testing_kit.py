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


LABEL = {"type": "object", "properties": {"urgent": {"type": "boolean"}}, "required": ["urgent"]}


async def triage(run: Run, text: str) -> bool:
    answer = await run.ai.generate(f"Is this urgent? {text}", schema=LABEL)
    return bool(answer["urgent"])


def test_a_mocked_answer_is_checked_against_the_calls_schema() -> None:
    """A mock the model could never return (it fails the schema) fails the test, naming the step and the
    validation failure, instead of passing a test of code that would break on a real answer."""
    good = create_test_workflow(triage)
    good.mock_step_result("ai.generate", {"urgent": True})
    assert good.run_sync("the server is on fire") is True
    bad = create_test_workflow(triage)
    bad.mock_step_result("ai.generate", {"urgent": "yes"})
    with pytest.raises(RunFailed) as failed:
        bad.run_sync("the server is on fire")
    message = str(failed.value.error)
    assert "ai.generate#1: the mocked answer does not satisfy the call's schema" in message, message
    assert "urgent" in message and "boolean" in message, message
