"""The CLI against a server (``--url`` / ``--token``): every run command, as a user types it.

A real ``flareflow serve --local`` process (the API suite's `LocalServer`) and the real ``flareflow``
command in subprocesses. The same commands without ``--url`` are covered by the rest of tests/cli;
both go through `flareflow.cli.backends`, one interface with a local and an HTTP implementation.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.hosts import LocalServer, clean_env, make_server

from .helpers import FLAREFLOW


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    srv = make_server("local", tmp_path_factory.mktemp("cli-remote"))
    yield srv
    srv.stop()


def ff(server: LocalServer, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``flareflow ARGS --url URL --token TOKEN`` from a folder that is not a project."""
    cmd = [*FLAREFLOW, *args, "--url", server.url, "--token", server.token if token is None else token]
    return subprocess.run(cmd, cwd=server.logs, env=clean_env(), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def api(server: LocalServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.url + path, headers=server.headers, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def test_run_list_show_and_events_over_the_api(server: LocalServer) -> None:
    out = ok(ff(server, "run", "steps", "--input", '{"n": 3}', "--json"))
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.completed"
    run_id = events[0]["run_id"]
    assert events[-1]["output"]["n"] == 3

    listed = json.loads(ok(ff(server, "runs", "list", "--workflow", "steps", "--json")))
    assert run_id in [row["id"] for row in listed]
    shown = json.loads(ok(ff(server, "runs", "show", run_id, "--json")))
    assert shown["status"] == "completed" and [e["seq"] for e in shown["events"]] == [e["seq"] for e in events]
    dumped = [json.loads(line) for line in ok(ff(server, "runs", "events", run_id, "--after", "2")).splitlines()]
    assert dumped == [e for e in events if e["seq"] > 2]
    table = ok(ff(server, "runs", "show", run_id))
    assert f"run {run_id}" in table and "status completed" in table


def test_send_event_answer_and_cancel_over_the_api(server: LocalServer) -> None:
    first = api(server, "POST", "/runs", json={"workflow": "approval"})["id"]
    second = api(server, "POST", "/runs", json={"workflow": "approval"})["id"]
    for run_id in (first, second):
        for _ in range(100):
            if api(server, "GET", f"/runs/{run_id}")["waiting"]:
                break
    sent = ok(ff(server, "send-event", first, "go", '{"by": "cli"}'))
    assert sent.strip() == f"✓ event go delivered to {first}"
    for _ in range(100):
        if any(w["kind"] == "input" for w in api(server, "GET", f"/runs/{first}")["waiting"]):
            break
    answered = ok(ff(server, "answer", first, "true"))
    assert answered.strip().startswith("✓ answer to ") and answered.strip().endswith(f"delivered to {first}")
    cancelled = ok(ff(server, "runs", "cancel", second, "--reason", "not needed"))
    assert cancelled.strip() == f"■ cancelled {second}"
    assert api(server, "GET", f"/runs/{second}")["status"] == "cancelled"


def test_server_errors_are_one_line(server: LocalServer, tmp_path: Path) -> None:
    wrong = ff(server, "runs", "list", token="not-the-token-0123456789")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.strip().startswith("error: server said 401"), wrong.stderr
    missing = ff(server, "runs", "show", "0" * 21)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: server said 404"), missing.stderr
    gone = subprocess.run([*FLAREFLOW, "runs", "list", "--url", "http://127.0.0.1:9", "--token", "x" * 20],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 1 and gone.stderr.strip().startswith("error: cannot reach the server"), gone.stderr
    assert "Traceback" not in wrong.stderr + missing.stderr + gone.stderr
