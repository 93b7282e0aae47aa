"""``mock_step_result("ai.embed", ...)`` for a single text: the vector the call returns (``[0.1, 0.2]``)
is returned as is -- it was read as a list of vectors and the call returned ``0.1`` -- and a list of
one vector (as a list of texts would get) still gives that vector."""

from __future__ import annotations

from typing import Any

from flareflow import Run
from flareflow.testing import create_test_workflow


async def one_text(run: Run, text: str) -> Any:
    return await run.ai.embed(text)


async def texts(run: Run, text: str) -> Any:
    return await run.ai.embed([text, text])


def test_a_mocked_single_embedding_is_the_vector() -> None:
    wf = create_test_workflow(one_text)
    wf.mock_step_result("ai.embed", [0.1, 0.2])
    assert wf.run_sync("hi") == [0.1, 0.2]
    wf = create_test_workflow(one_text)
    wf.mock_step_result("ai.embed", [[0.1, 0.2]])
    assert wf.run_sync("hi") == [0.1, 0.2]
    wf = create_test_workflow(texts)
    wf.mock_step_result("ai.embed", [[0.1], [0.2]])
    assert wf.run_sync("hi") == [[0.1], [0.2]]
