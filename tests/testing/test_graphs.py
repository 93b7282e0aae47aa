"""`flareflow.testing` on task graphs (`flareflow.graphs`): mocks by task id or name, a week-long
sleep task skipped, a wait_event task fed by ``send_event``, a failed task as `RunFailed`; a graph
file loaded by path, its shell task run on the local ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flareflow import Registry, WorkflowDefinitionError
from flareflow.graphs import ports
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


DEPLOY_YAML = """\
name: deploy
tasks:
  - id: build
    type: shell
    command: echo built ${input.version}
  - id: wait
    type: sleep
    duration: 2 days
    depends_on: [build]
  - id: announce
    type: python
    function: tests.testing.examples:notify
    depends_on: [wait]
    inputs:
      message: "${tasks.build.result}"
"""


def test_a_graph_file_is_loaded_and_its_shell_task_runs_on_the_local_ports(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(DEPLOY_YAML)
    before = ports.current()
    wf = create_test_workflow(tmp_path / "deploy.yaml").disable_sleeps().mock_step_result("announce", "quiet")
    output = wf.run_sync({"version": "1.2"})
    assert output["tasks"]["build"]["status"] == "completed"
    assert "built 1.2" in json.dumps(output["tasks"]["build"]["result"])
    assert output["tasks"]["announce"]["result"] == "quiet" and examples.calls == []
    assert ports.current() is before  # the local ports only for the run
    assert create_test_workflow(str(tmp_path / "deploy.yaml")).name == "deploy"


def test_a_broken_graph_file_is_an_error_naming_where(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ntasks:\n  - id: x\n    type: nope\n")
    with pytest.raises(WorkflowDefinitionError, match=r"bad\.yaml:4"):
        create_test_workflow(tmp_path / "bad.yaml")
    with pytest.raises(WorkflowDefinitionError, match="cannot be read"):
        create_test_workflow(tmp_path / "missing.yaml")
