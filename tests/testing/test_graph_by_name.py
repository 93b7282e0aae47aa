"""``create_test_workflow("g-custom")``: a task graph of the project's workflow folders is found by its
name or its file name (a graph file has no module to import), and a name found nowhere says where it
looked and how to pass the file instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from flareflow import WorkflowDefinitionError, WorkflowNotFound
from flareflow.testing import create_test_workflow

GRAPH = """\
name: {name}
tasks:
  - id: hello
    type: shell
    command: echo hello
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.flareflow]\nworkflows = ["workflows"]\n')
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "g-custom.yaml").write_text(GRAPH.format(name="g-custom"))
    (tmp_path / "workflows" / "nightly.json").write_text('{"name": "nightly-build", "tasks": '
                                                         '[{"id": "x", "type": "shell", "command": "true"}]}')
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path / "tests")  # pytest run from a subfolder finds the project above it
    return tmp_path


def test_a_graph_is_found_by_its_name_or_its_file_name(project: Path) -> None:
    wf = create_test_workflow("g-custom").mock_step_result("hello", "hi")
    assert wf.name == "g-custom" and wf.run_sync()["tasks"]["hello"]["result"] == "hi"
    assert create_test_workflow("nightly-build").name == "nightly-build"
    assert create_test_workflow("nightly").name == "nightly-build"  # workflows/nightly.json


def test_a_name_found_nowhere_says_where_it_looked_and_to_pass_the_path(project: Path) -> None:
    with pytest.raises(WorkflowNotFound) as missing:
        create_test_workflow("g-custon")
    message = str(missing.value)
    assert "unknown workflow 'g-custon'" in message and '(did you mean "g-custom"?)' in message
    assert f"the graph files of {project / 'workflows'} have g-custom, nightly-build" in message
    assert "create_test_workflow('workflows/NAME.yaml')" in message and "import workflows.NAME" in message


def test_a_broken_graph_found_by_name_is_its_own_located_error(project: Path) -> None:
    (project / "workflows" / "broken.yaml").write_text("name: broken\ntasks:\n  - id: x\n    type: nope\n")
    with pytest.raises(WorkflowDefinitionError, match=r"broken\.yaml:4"):
        create_test_workflow("broken")


def test_outside_a_project_the_message_says_there_was_nothing_to_look_in(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkflowNotFound, match="no flareflow project at or above"):
        create_test_workflow("g-custom")
