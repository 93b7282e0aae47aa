"""A test of the AI example with `flareflow.testing`: its model calls are mocked by their step names
(``ai.embed``, ``ai.generate``; ``occurrence=N`` for the Nth call), because a test never calls a model
server -- an unmocked ``run.ai`` call fails the run saying how to mock it.
"""

from flareflow.testing import create_test_workflow  # noqa: I001 (flareflow is first-party in its own repository)
from workflows.assistant import NOTES, ask_docs


async def test_ask_docs_answers_from_the_closest_note() -> None:
    wf = create_test_workflow(ask_docs)
    wf.mock_step_result("ai.embed", [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], occurrence=1)  # the notes
    wf.mock_step_result("ai.embed", [[0.1, 1.0]], occurrence=2)  # the question: closest to the second note
    wf.mock_step_result("ai.generate", "It waits durably.", occurrence=1)  # the answer
    wf.mock_step_result("ai.generate", {"ok": True}, occurrence=2)  # the JSON verdict
    result = await wf.run("What does run.sleep do?")
    assert result == {"answer": "It waits durably.", "note": NOTES[1], "ok": True}
    assert wf.steps == ["ai.embed", "ai.embed", "ai.generate", "ai.generate"]
