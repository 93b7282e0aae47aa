"""A mock that matches nothing is warned about when the run ends (`UnusedMockWarning`), naming the mock,
a did-you-mean over what the run called (and a graph's task ids), or how often its step ran; once per
test workflow, at the test's own line; and ``-W error::flareflow.testing.UnusedMockWarning`` fails such
a test in a user's pytest run."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from flareflow import InvalidInput, Registry
from flareflow.graphs.compiler import register_graph
from flareflow.graphs.model import Graph
from flareflow.graphs.validate import validate_graph
from flareflow.testing import RunFailed, UnusedMockWarning, create_test_workflow
from tests.cli.helpers import cli_env

from . import examples
from .examples import REGISTRY

ORDER = {"sku": "ABC", "email": "ada@example.com"}


@pytest.fixture(autouse=True)
def _uncounted() -> None:
    examples.calls.clear()


def messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, UnusedMockWarning)]


async def test_a_misspelt_step_name_warns_with_a_did_you_mean_at_the_tests_line() -> None:
    wf = create_test_workflow("shop", registry=REGISTRY).disable_sleeps().send_event("approval", {"by": "x"})
    wf.answer(True).mock_step_result("Paymnet.process", {"success": True, "charge_id": "ch_test"})
    with pytest.warns(UnusedMockWarning) as caught:
        await wf.run(ORDER)
    [sentence] = messages(caught.list)
    assert sentence.startswith("wf.mock_step_result('Paymnet.process') matched no step of workflow 'shop'")
    assert 'did you mean "Payment.process"?' in sentence
    assert caught.list[0].filename == __file__  # pytest's summary points at the test, not at the kit
    assert examples.calls == ["charge", "mail"]  # the real functions ran: what the warning is about
    assert wf.unused_mocks == ["Paymnet.process"]


def test_an_occurrence_past_the_calls_says_how_many_there_were() -> None:
    wf = create_test_workflow("loop", registry=REGISTRY).mock_step_error("double", RuntimeError, occurrence=3)
    with pytest.warns(UnusedMockWarning) as caught:
        assert wf.run_sync(1) == [0]
    [sentence] = messages(caught.list)
    assert sentence.startswith("wf.mock_step_error('double', occurrence=3) matched no step")
    assert "'double' was called 1 time in the last run, so it has no call 3" in sentence
    assert caught.list[0].filename == __file__  # run_sync too


def test_a_mock_used_once_is_never_warned_about_and_an_unused_one_only_once() -> None:
    wf = create_test_workflow("loop", registry=REGISTRY).mock_step_result("double", 5, occurrence=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert wf.run_sync(2) == [0, 5]
        assert wf.run_sync(1) == [0]  # no second call this time: the mock is spelt right all the same
    assert messages(caught) == []
    wf.mock_step_result("triple", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wf.run_sync(1)
        wf.run_sync(1)
    assert len(messages(caught)) == 1 and "'triple'" in messages(caught)[0]
    assert "it called: double" in messages(caught)[0]  # no close name: what the run did call


def test_a_failed_run_still_warns_since_the_misspelt_mock_may_be_why() -> None:
    wf = create_test_workflow("broken", registry=REGISTRY).mock_step_result("fatall", None)
    with pytest.warns(UnusedMockWarning, match='did you mean "fatal"'), pytest.raises(RunFailed):
        wf.run_sync(True)


def test_a_run_that_never_started_does_not_warn() -> None:
    wf = create_test_workflow("loop", registry=REGISTRY).mock_step_result("nope", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedMockWarning)
        with pytest.raises(InvalidInput):  # an input that is not JSON: no run, no step was ever tried
            wf.run_sync({1, 2})
    assert wf.run_id is None


GRAPH = {
    "name": "pipeline",
    "tasks": [
        {"id": "unit", "type": "python", "function": "tests.testing.examples:lookup", "inputs": {"sku": "u"}},
        {"id": "integration", "type": "python", "function": "tests.testing.examples:lookup",
         "inputs": {"sku": "i"}},
        {"id": "deploy", "name": "Deploy", "type": "python", "function": "tests.testing.examples:notify",
         "when": "${input.deploy}", "inputs": {"message": "go"}, "depends_on": ["unit", "integration"]},
    ],
}


def pipeline() -> Registry:
    registry = Registry()
    graph = Graph(GRAPH, "pipeline.json")
    assert validate_graph(graph) == []
    register_graph(registry, graph)
    return registry


def test_a_misspelt_graph_task_id_warns_and_a_task_the_run_skipped_is_named_so() -> None:
    wf = create_test_workflow("pipeline", registry=pipeline())
    wf.mock_step_result("integraton", {"sku": "i", "stock": 9}).mock_step_result("Deploy", "sent")
    with pytest.warns(UnusedMockWarning) as caught:
        wf.run_sync({"deploy": False})
    found = messages(caught.list)
    assert len(found) == 2
    assert "'integraton'" in found[0] and 'did you mean "integration"?' in found[0]
    assert "'Deploy' did not run in the last run (a branch it did not take?)" in found[1]
    assert examples.calls == ["lookup u", "lookup i"]


USER_TEST = '''\
from flareflow import Run, workflow
from flareflow.testing import create_test_workflow


def add(a, b):
    return a + b


@workflow("adder")
async def adder(run: Run, n: int) -> int:
    return await run.step("add", add, n, 1)


def test_misspelt():
    wf = create_test_workflow(adder).mock_step_result("ad", 40)
    assert wf.run_sync(1) == 2
'''


@pytest.mark.parametrize("strict", [False, True])
def test_a_users_pytest_shows_the_warning_and_w_error_fails_the_test(tmp_path: Path, strict: bool) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    env = cli_env()
    env.pop("PYTEST_ADDOPTS", None)
    flags = ["-W", "error::flareflow.testing.UnusedMockWarning"] if strict else []
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *flags],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert "UnusedMockWarning: wf.mock_step_result('ad') matched no step of workflow 'adder'" in out, out
    assert 'did you mean "add"?' in out
    if strict:
        assert result.returncode == 1 and "1 failed" in out, out
    else:
        assert result.returncode == 0 and "1 passed, 1 warning" in out, out
        assert "test_user.py:16" in out  # the warnings summary points at the test's line
