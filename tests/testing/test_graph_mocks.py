"""Mocking a graph task as the README reads: ``wf.mock_step_result("build", "built")`` is the task's
result (what ``${tasks.build.result}`` gives), for a shell, docker or http task whose step returns more
than that; the step's whole shape still works; a mock may name a task by its id or by the name
``wf.steps`` shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flareflow.testing import RunFailed, create_test_workflow
from flareflow.testing.graphs import graph_tasks

from . import examples

CI = """\
name: ci
tasks:
  - id: build
    name: Build
    type: shell
    command: exit 3
  - id: image
    type: docker
    action: build
    image: app:test
    depends_on: [build]
  - id: api
    type: http
    url: http://127.0.0.1:9/deploy
    method: POST
    depends_on: [image]
  - id: announce
    type: python
    function: tests.testing.examples:notify
    depends_on: [api]
    inputs:
      message: "${tasks.build.result} / ${tasks.image.result} / ${tasks.api.result.url} / ${tasks.build.exit_code}"
"""


@pytest.fixture(autouse=True)
def _uncounted() -> None:
    examples.calls.clear()


@pytest.fixture
def ci(tmp_path: Path) -> Path:
    (tmp_path / "ci.yaml").write_text(CI)
    return tmp_path / "ci.yaml"


def test_a_plain_value_is_the_tasks_result_for_shell_docker_and_http(ci: Path) -> None:
    wf = create_test_workflow(ci)
    wf.mock_step_result("build", "built").mock_step_result("image", "sha256:abc")
    wf.mock_step_result("api", {"url": "https://app.example"})
    output: dict[str, Any] = wf.run_sync()
    tasks = output["tasks"]
    assert tasks["build"]["result"] == "built" and tasks["build"]["exit_code"] == 0
    assert tasks["build"]["stdout"] == "built\n"  # as if the command had printed the line
    assert tasks["image"]["result"] == "sha256:abc"
    assert tasks["api"]["result"] == {"url": "https://app.example"} and tasks["api"]["status_code"] == 200
    assert examples.calls == ["notify built / sha256:abc / https://app.example / 0"]
    assert wf.unused_mocks == []


def test_the_steps_whole_shape_still_works(ci: Path) -> None:
    wf = create_test_workflow(ci)
    wf.mock_step_result("build", {"stdout": "built\n", "exit_code": 0})
    wf.mock_step_result("image", {"stdout": "", "stderr": "cached\n", "exit_code": 0, "duration_s": 1.5})
    wf.mock_step_result("api", {"status": 201, "body": {"url": "u"}})
    tasks = wf.run_sync()["tasks"]
    assert tasks["build"]["result"] == "built" and tasks["image"]["stderr"] == "cached\n"
    assert tasks["api"]["status_code"] == 201 and tasks["api"]["result"] == {"url": "u"}


def test_a_value_a_command_could_never_print_fails_the_run_saying_what_to_mock(ci: Path) -> None:
    wf = create_test_workflow(ci).mock_step_result("build", {"version": 2})
    with pytest.raises(RunFailed) as failed:
        wf.run_sync()
    assert "mocked shell task 'build' with a dict, but its result is the text the command printed" in str(
        failed.value)
    [step_failed] = [e for e in wf.events if e["type"] == "step.failed"]
    assert "(${tasks.build.result}): mock a string" in step_failed["error"]["message"]
    assert [e["attempt"] for e in wf.events if e["type"] == "step.started"] == [1]  # not retried


def test_a_mock_names_a_task_by_its_id_or_by_the_name_wf_steps_shows(ci: Path) -> None:
    by_id = create_test_workflow(ci).mock_step_result("build", "a").mock_step_result("image", "b")
    by_id.mock_step_result("api", None)
    by_id.run_sync()
    assert by_id.steps == ["Build", "image", "api", "announce"]  # a task's name, its id when it has none
    by_name = create_test_workflow(ci)
    for step, value in zip(by_id.steps[:3], ["a", "b", None], strict=True):
        by_name.mock_step_result(step, value)
    assert by_name.run_sync()["tasks"]["build"]["result"] == "a"
    assert by_name.unused_mocks == []


LOOPED: dict[str, Any] = {
    "name": "looped",
    "tasks": [
        {"id": "each", "type": "loop", "items": ["a", "b"], "then": {"type": "shell", "command": "exit 1"}},
        {"id": "check", "type": "conditional", "condition": True,
         "then": {"type": "http", "url": "http://127.0.0.1:9/"}},
        {"id": "mixed", "type": "shell", "command": "exit 1",
         "on_failure": {"type": "python", "function": "tests.testing.examples:notify"}},
    ],
}


def test_nested_tasks_are_shaped_by_the_type_of_the_task_that_runs_under_the_tag() -> None:
    from flareflow import Registry
    from flareflow.graphs.compiler import register_graph
    from flareflow.graphs.model import Graph

    defn = register_graph(Registry(), Graph(LOOPED, "looped.json"))
    tasks = graph_tasks(defn)
    assert (tasks.step_kind("each"), tasks.step_kind("check"), tasks.step_kind("mixed")) == ("shell", "http", None)
    wf = create_test_workflow(defn).mock_step_result("each", "done").mock_step_result("check", [1])
    wf.mock_step_result("mixed", {"stdout": "ok", "exit_code": 0})  # two types share the tag: as given
    tasks_out = wf.run_sync()["tasks"]
    assert tasks_out["each"]["result"] == ["done", "done"]
    assert tasks_out["check"]["result"] == [1] and tasks_out["mixed"]["result"] == "ok"


def test_a_failing_command_is_a_mocked_error_whose_exit_code_the_task_records(ci: Path) -> None:
    wf = create_test_workflow(ci).mock_step_error("build", RuntimeError("exited with code 2"))
    with pytest.raises(RunFailed, match=r"build \(exit code 2\)"):
        wf.run_sync()
    assert wf.unused_mocks == []


def test_a_whole_shape_mock_with_a_nonzero_exit_code_fails_the_task_as_the_command_would(ci: Path) -> None:
    # {"exit_code": 1} is what a failing command looks like: the task fails (it used to complete)
    wf = create_test_workflow(ci).mock_step_result("build", {"stdout": "", "stderr": "lint: 3 errors\n",
                                                             "exit_code": 1})
    with pytest.raises(RunFailed, match=r"build \(exit code 1\): command exited with code 1 \(mocked\): lint"):
        wf.run_sync()
    assert examples.calls == []  # its dependents never ran
    assert wf.unused_mocks == []
