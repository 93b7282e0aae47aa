"""Hostile workflow code in the Durable Object on real workerd (``flareflow serve`` with the harness).

On a native Python Worker a step raising SystemExit ended with ``RuntimeError: memory access out of
bounds`` and took the isolate down. Here it must be a step failure like any other, retried per its
policy, while the Worker goes on answering. Sync steps run inline there (Pyodide cannot start
threads), so the blocking-step tests are local only.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.hosts import make_server

from .helpers import client, events, finished, of_type, raised, start
from .project import write_project


@pytest.fixture(scope="module")
def workerd(tmp_path_factory: pytest.TempPathFactory):
    srv = make_server("workerd", tmp_path_factory.mktemp("hostile-workerd"), write_project)
    yield srv
    srv.stop()


def assert_up(server: Any) -> None:
    assert server.alive, server.output()
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize(("name", "message"), [("SystemExit", "3"), ("KeyboardInterrupt", "KeyboardInterrupt"),
                                               ("Custom", "custom base exception")])
def test_base_exception_in_a_step_is_a_step_failure_on_workerd(workerd: Any, name: str, message: str) -> None:
    with client(workerd) as http:
        run_id = start(http, "exits", {"raise": name})
        run = finished(http, run_id, timeout=40)
        assert_up(workerd)
        assert run["status"] == "failed", run
        evs = events(http, run_id)
        attempts = of_type(evs, "step.retrying") + of_type(evs, "step.failed")
        assert [e["attempt"] for e in attempts] == [1, 2, 3], evs
        assert all(raised(e["error"]) == (name, message, ["raise_named"]) for e in attempts), attempts
        assert run["steps"][0]["status"] == "failed" and run["error"]["cause"]["type"] == name, run
        assert finished(http, start(http, "quick"), timeout=40)["status"] == "completed"
    assert_up(workerd)


def test_system_exit_in_the_workflow_body_fails_the_run_on_workerd(workerd: Any) -> None:
    with client(workerd) as http:
        run = finished(http, start(http, "body_exit"), timeout=40)
    assert run["status"] == "failed" and raised(run["error"]) == ("SystemExit", "4", ["body_exit"]), run
    assert_up(workerd)


def test_unprintable_and_huge_errors_on_workerd(workerd: Any) -> None:
    with client(workerd) as http:
        unprintable = finished(http, start(http, "unprintable"), timeout=40)
        huge_id = start(http, "huge")
        finished(http, huge_id, timeout=40)
        huge = http.get(f"/runs/{huge_id}")
    assert unprintable["status"] == "failed" and unprintable["steps"][0]["status"] == "failed", unprintable
    assert unprintable["steps"][0]["error"]["type"] == "Unprintable"
    assert len(huge.content) < 50_000, len(huge.content)
    message = huge.json()["steps"][0]["error"]["message"]
    assert message.startswith("x" * 4096) and "3,000,000 characters" in message, message[4090:]
    assert_up(workerd)
