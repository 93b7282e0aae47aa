"""Hostile workflow code against ``flareflow serve --local`` (a real process, real sockets).

A step's `BaseException` (SystemExit, KeyboardInterrupt, GeneratorExit, any other subclass, even a
CancelledError the step raises itself) is a failure of that step, retried per its policy; the
server stays up, restarts do not die and other runs are unaffected. Sync steps run in threads, so
``timeout=`` holds for them and ``/health`` answers while one blocks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.hosts import make_server

from .helpers import HealthProbe, client, events, finished, of_type, raised, start, until
from .project import write_project

#: Health answers within this many ms while a step blocks (the brief's bound).
HEALTH_MS = 50.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the tests that do not restart it."""
    srv = make_server("local", tmp_path_factory.mktemp("hostile"), write_project)
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path: Path):
    srv = make_server("local", tmp_path, write_project)
    yield srv
    srv.stop()


def assert_up(server: Any) -> None:
    assert server.alive, server.output()
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


EXPECTED = {"SystemExit": "3", "KeyboardInterrupt": "KeyboardInterrupt", "GeneratorExit": "GeneratorExit",
            "Custom": "custom base exception", "CancelledError": "CancelledError"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_base_exception_in_a_step_is_a_retried_step_failure(server: Any, name: str) -> None:
    with client(server) as http:
        run_id = start(http, "exits", {"raise": name})
        bystander = start(http, "quick")
        run = finished(http, run_id)
        assert_up(server)
        assert run["status"] == "failed", run
        evs = events(http, run_id)
        retrying = of_type(evs, "step.retrying")
        failed = of_type(evs, "step.failed")
        assert [e["attempt"] for e in retrying] == [1, 2], evs
        assert [e["attempt"] for e in failed] == [3], evs
        for event in [*retrying, *failed]:
            assert raised(event["error"]) == (name, EXPECTED[name], ["raise_named"]), event
        assert run["steps"][0]["status"] == "failed" and run["steps"][0]["attempts"] == 3, run
        assert run["steps"][0]["error"]["type"] == name
        assert run["error"]["type"] == "StepFailed" and run["error"]["cause"]["type"] == name, run
        assert finished(http, bystander)["status"] == "completed"
        assert_up(server)


def test_system_exit_in_the_workflow_body_fails_the_run(server: Any) -> None:
    with client(server) as http:
        run_id = start(http, "body_exit")
        run = finished(http, run_id)
        assert_up(server)
        assert run["status"] == "failed", run
        assert raised(run["error"]) == ("SystemExit", "4", ["body_exit"]), run
        assert run["steps"][0]["status"] == "completed"
        assert finished(http, start(http, "quick"))["status"] == "completed"


def test_restarts_while_a_step_keeps_exiting_do_not_die(own_server: Any) -> None:
    """The reviewer's case: the run resumes at every start and its step raises SystemExit again."""
    server = own_server
    limit = 12

    def failures(http: httpx.Client) -> list[dict[str, Any]]:
        return [e for e in events(http, run_id) if e["type"] in ("step.retrying", "step.failed")]

    with client(server) as http:
        run_id = start(http, "exits", {"raise": "SystemExit", "limit": limit, "delay": 0.3})
        until(lambda: failures(http), 10, "a first failed attempt")
    for hard in (True, False, True):
        with client(server) as http:
            before = len(failures(http))
        server.restart(hard=hard)
        with client(server) as http:  # the resumed run's next attempt raises SystemExit in this process
            until(lambda: len(failures(http)) > before, 10, "an attempt after the restart")  # noqa: B023
        time.sleep(0.2)
        assert_up(server)
    with client(server) as http:
        run = finished(http, run_id)
        assert run["status"] == "failed", run
        failed = failures(http)
        assert len(failed) == limit and failed[-1]["type"] == "step.failed", failed
        assert {e["error"]["type"] for e in failed} == {"SystemExit"}
        assert finished(http, start(http, "quick"))["status"] == "completed"
    assert_up(server)


def test_blocking_sync_step_times_out_and_health_stays_fast(server: Any, tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    with client(server) as http, HealthProbe(server) as probe:
        t0 = time.monotonic()
        run_id = start(http, "blocking", {"seconds": 3, "log": str(log)})
        run = finished(http, run_id, timeout=10)
        elapsed = time.monotonic() - t0
        bystander = finished(http, start(http, "quick"), timeout=5)  # while both threads still sleep
        until(lambda: log.read_text().count("end") == 2, 10, "the abandoned threads to return")
        time.sleep(0.3)
    assert not probe.failures, probe.failures
    assert len(probe.latencies) > 50, len(probe.latencies)
    assert probe.max_ms < HEALTH_MS, f"/health took up to {probe.max_ms:.1f} ms while a step blocked"
    assert run["status"] == "failed", run
    assert elapsed < 3.0, f"two 1 s attempts + 0.2 s backoff took {elapsed:.2f}s"
    assert bystander["status"] == "completed"
    with client(server) as http:
        evs = events(http, run_id)
        late = finished(http, run_id)
    retrying = of_type(evs, "step.retrying")
    failed = of_type(evs, "step.failed")
    assert [e["attempt"] for e in retrying] == [1] and [e["attempt"] for e in failed] == [2], evs
    for event in [*retrying, *failed]:
        assert event["error"]["type"] == "StepTimeout", event
        assert 1000 <= event["duration_ms"] < 1500, event
    assert not of_type(evs, "step.completed"), "a late result of an abandoned thread was recorded"
    assert late["status"] == "failed" and late["steps"][0]["status"] == "failed", late
    assert late["steps"][0]["result"] is None


def test_late_result_of_an_abandoned_attempt_is_never_recorded(server: Any, tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    with client(server) as http:
        run_id = start(http, "late", {"log": str(log)})
        run = finished(http, run_id, timeout=10)
        assert run["status"] == "completed" and run["output"] == "on time", run
        until(lambda: log.read_text().count("end") == 2, 10, "the abandoned first attempt to return")
        time.sleep(0.3)
        evs = events(http, run_id)
        after = http.get(f"/runs/{run_id}").json()
    completed = of_type(evs, "step.completed")
    assert [(e["attempt"], e["result"]) for e in completed] == [(2, "on time")], evs
    assert of_type(evs, "step.retrying")[0]["error"]["type"] == "StepTimeout"
    assert after["steps"][0]["result"] == "on time" and after["output"] == "on time", after
    assert evs == events(client(server), run_id) and evs[-1]["type"] == "run.completed"


def test_exception_whose_str_raises_is_a_normal_step_failure(server: Any) -> None:
    with client(server) as http:
        run = finished(http, start(http, "unprintable"))
    assert run["status"] == "failed", run
    step = run["steps"][0]
    assert step["status"] == "failed", step
    assert step["error"]["type"] == "Unprintable"
    assert "Unprintable" in step["error"]["message"] and "str" in step["error"]["message"], step
    assert run["error"]["cause"]["type"] == "Unprintable", run
    assert_up(server)


def test_huge_error_message_is_stored_capped(server: Any) -> None:
    with client(server) as http:
        run_id = start(http, "huge")
        finished(http, run_id)
        response = http.get(f"/runs/{run_id}")
        evs = events(http, run_id)
    assert len(response.content) < 50_000, f"GET /runs/{{id}} is {len(response.content)} bytes"
    run = response.json()
    assert run["status"] == "failed"
    for error in (run["steps"][0]["error"], run["error"]["cause"],
                  *(e["error"] for e in evs if e["type"] in ("step.retrying", "step.failed"))):
        message = error["message"]
        assert message.startswith("x" * 4096) and len(message) < 4200, len(message)
        assert "truncated" in message and "3000000" in message.replace(",", ""), message[4096:]
    assert len(run["error"]["message"]) < 4200
    assert sum(len(str(e)) for e in evs) < 50_000
