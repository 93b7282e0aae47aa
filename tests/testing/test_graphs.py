"""`flareflow.testing` on a task graph (`flareflow.graphs`): mocks by task id or name, a week-long
sleep task skipped, a wait_event task fed by ``send_event``, a failed task as `RunFailed`."""

from __future__ import annotations

from typing import Any

import pytest

from flareflow import Registry
from flareflow.graphs.compiler import register_graph
from flareflow.graphs.model import Graph
from flareflow.graphs.validate import validate_graph
from flareflow.testing import RunFailed, create_test_workflow

from . import examples

RESTOCK: dict[str, Any] = {
    "name": "restock",
    "tasks": [
        {"id": "lookup", "name": "Look up stock", "type": "python", "function": "tests.testing.examples:lookup",
         "inputs": {"sku": "${input.sku}"}},
        {"id": "cool-off", "type": "sleep", "duration": "7 days", "depends_on": ["lookup"]},
        {"id": "approval", "type": "wait_event", "event": "approved", "depends_on": ["cool-off"]},
        {"id": "notify", "type": "python", "function": "tests.testing.examples:notify", "depends_on": ["approval"],
         "inputs": {"message": "${tasks.lookup.result.sku} restocked by ${tasks.approval.result.by}"},
         "retry": {"attempts": 3, "delay": 60000}},
    ],
}


@pytest.fixture(autouse=True)
def _uncounted() -> None:
    examples.calls.clear()


def restock() -> Registry:
    registry = Registry()
    graph = Graph(RESTOCK, "restock.json")
    assert validate_graph(graph) == []
    register_graph(registry, graph)
    return registry


async def test_a_graph_runs_with_a_task_mocked_by_id_its_sleep_skipped_and_its_event_sent() -> None:
    wf = create_test_workflow("restock", registry=restock()).disable_sleeps()
    wf.mock_step_result("lookup", {"sku": "ABC", "stock": 3})  # the task id; its step is named "Look up stock"
    wf.send_event("approved", {"by": "ops"})
    output = await wf.run({"sku": "ABC"})
    assert output["tasks"]["notify"]["result"] == "notified: ABC restocked by ops"
    assert wf.steps == ["Look up stock", "notify"]
    assert examples.calls == ["notify ABC restocked by ops"]  # the mocked task's function never ran
    assert wf.now - wf.start_time == 7 * 86400
    assert {e.get("task") for e in wf.events if e["type"] == "step.started"} == {"lookup", "notify"}


def test_a_graph_task_mocked_by_name_to_fail_fails_the_run_after_its_retries() -> None:
    wf = create_test_workflow("restock", registry=restock()).disable_sleeps().send_event("approved", {"by": "ops"})
    wf.mock_step_error("notify", ConnectionError("mail relay down"))
    with pytest.raises(RunFailed) as failed:
        wf.run_sync({"sku": "XYZ"})
    assert "notify" in failed.value.error["message"]
    assert [e["attempt"] for e in wf.events if e["type"] == "step.started" and e["name"] == "notify"] == [1, 2, 3]
    assert examples.calls == ["lookup XYZ"]
