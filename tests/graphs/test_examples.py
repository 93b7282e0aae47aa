"""The three example definitions of the design, adapted to run on these machines, end to end through
the CLI: a CI/CD pipeline (shell, parallel, conditional, loop), scheduled maintenance (http health
checks against a loopback server this test starts, clean-ups, an on_failure alert) and development
automation (python, data_processor, database migrations and queries on SQLite, docker through a
stand-in ``docker`` executable, another workflow as a task, an answer and an event)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.cli.helpers import Live, assert_no_traceback, describe, ff

from .helpers import failure_of, make_project, output_of, run_json

CI_CD = """\
name: ci-cd
version: 1.0.0
description: Build, test and deploy
trigger: {type: manual}
env: {DEPLOY_ENABLED: "false"}
tasks:
  - id: build
    name: Build
    type: shell
    command: mkdir -p dist && echo 'bundle' > dist/app.js && echo built
    timeout: 600
    retry: {attempts: 3, delay: 50}
  - id: health
    name: Health check
    type: http
    url: ${env.BASE_URL}/health
    method: GET
    timeout: 10000
    headers: {Authorization: "Bearer ${env.API_TOKEN}"}
  - id: tests
    name: Tests
    type: parallel
    wait_for: all
    depends_on: [build]
    tasks:
      - {id: unit, name: Unit tests, type: shell, command: "test -s dist/app.js && echo unit ok"}
      - {id: integration, name: Integration tests, type: shell, command: "grep -q bundle dist/app.js && echo integ ok"}
  - id: deploy
    name: Deploy if enabled
    type: conditional
    depends_on: [tests]
    condition: "${env.DEPLOY_ENABLED} == 'true' && ${tasks.build.exit_code} == 0"
    then: {type: shell, command: "echo deployed"}
    else: {type: shell, command: "echo 'Deployment skipped'"}
  - id: envs
    name: Deploy to environments
    type: loop
    depends_on: [deploy]
    items: [staging, production]
    item: target
    stop_on_failure: true
    then: {type: shell, command: "echo deploy --env ${target} >> deployed.txt; echo ${target}"}
"""

MAINTENANCE = """\
name: maintenance
description: Scheduled maintenance with health checks and clean-ups
trigger: {type: schedule, cron: "0 3 * * *"}
tasks:
  - id: api
    name: API health
    type: http
    url: ${env.BASE_URL}/health
    expected_status: 200
    response: json
  - id: status
    name: Status page
    type: http
    url: ${env.BASE_URL}/status
    expected_status: [200, 204]
  - id: cleanup
    name: Clean-ups
    type: parallel
    depends_on: [api, status]
    tasks:
      - {id: tmp, name: Old temporary files, type: shell, command: "rm -f tmp/*.tmp && ls tmp | wc -l"}
      - {id: logs, name: Truncate logs, type: shell, command: ": > logs/app.log && wc -c < logs/app.log"}
  - id: notify
    name: Notify
    type: http
    depends_on: [cleanup]
    url: ${env.BASE_URL}/notify
    method: POST
    body: {version: "${tasks.api.result.version}", left: "${tasks.tmp.result}"}
  - id: broken
    name: Flaky dependency
    type: http
    url: ${env.BASE_URL}/broken
    retry: {attempts: 2, delay: 10}
    continue_on_failure: true
on_failure:
  - {id: alert, type: shell, command: "echo alert >&2"}
"""

AUTOMATION = """\
name: automation
description: Development automation
inputs:
  type: object
  properties:
    project: {type: string, default: demo}
tasks:
  - id: setup
    name: Schema
    type: database
    connection: data/app.db
    migration: migrations
  - id: seed
    name: Seed
    type: database
    depends_on: [setup]
    connection: data/app.db
    transaction:
      - {query: "INSERT INTO files(name) VALUES (?)", params: ["${input.project}"]}
      - "INSERT INTO files(name) VALUES ('second')"
  - id: count
    name: Count rows
    type: database
    depends_on: [seed]
    connection: data/app.db
    query: SELECT count(*) AS n FROM files
  - id: clean
    name: Clean data files
    type: data_processor
    input: raw/*.csv
    processor: tools:clean
    output: cleaned
  - id: summary
    name: Summarise
    type: python
    depends_on: [clean, count]
    function: tools:summarise
    inputs: {files: "${tasks.clean.result.files}", rows: "${tasks.count.result[0].n}"}
  - id: image
    name: Build image
    type: docker
    action: build
    image: demo:dev
    context: .
  - id: smoke
    name: Smoke test in the image
    type: docker
    depends_on: [image]
    image: demo:dev
    command: [python, -c, "print('ok')"]
    environment: {MODE: test}
  - id: greet
    name: Greeting workflow
    type: workflow
    workflow: greet
    input: {who: "${input.project}"}
  - id: approve
    name: Release approval
    type: input
    depends_on: [summary, smoke, greet]
    prompt: "Release ${input.project}?"
    schema: {type: boolean}
  - id: merged
    name: Merge webhook
    type: wait_event
    depends_on: [approve]
    when: ${tasks.approve.result}
    event: merged
    timeout: 60
  - id: settle
    name: Settle
    type: sleep
    depends_on: [merged]
    duration: 200ms
"""

TOOLS = '''\
def clean(path, text):
    rows = [line.strip().lower() for line in text.splitlines() if line.strip()]
    return "\\n".join(rows) + "\\n"


def summarise(files, rows):
    return {"files": sorted(files), "rows": rows}
'''

GREET = '''\
from flareflow import Run, workflow


def hello(who):
    return f"hello {who}"


@workflow("greet")
async def greet(run: Run, input: dict) -> str:
    return await run.step("hello", hello, input["who"])
'''

#: A stand-in for the docker CLI (we do not own Docker, and there is no Docker engine here): it
#: records its arguments and answers like docker would for build and run.
DOCKER_STANDIN = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/docker-calls.log"
case "$1" in
  build) echo "Successfully tagged $3" ;;
  run) echo "ok" ;;
  *) echo "unknown command $1" >&2; exit 1 ;;
esac
"""


class _Handler(BaseHTTPRequestHandler):
    posted: ClassVar[list[Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"ok": True, "version": "1.2.3", "auth": self.headers.get("Authorization")})
        elif self.path == "/status":
            self.send_response(204)
            self.end_headers()
        else:
            self._send(500, {"error": "broken"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        _Handler.posted.append(json.loads(self.rfile.read(length)))
        self._send(201, {"received": True})


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.posted = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_ci_cd_pipeline(tmp_path: Path, server: str) -> None:
    root = make_project(tmp_path, {"workflows/ci-cd.yaml": CI_CD})
    env = ["--env", f"BASE_URL={server}", "--env", "API_TOKEN=t0ken"]
    result, events = run_json(root, "ci-cd", *env)
    out = output_of(events)
    assert result.returncode == 0, describe(result)
    assert out["tasks"]["deploy"]["result"] == "Deployment skipped"
    assert out["tasks"]["health"]["result"]["auth"] == "Bearer t0ken"
    assert out["tasks"]["tests"]["result"] == {"unit": "unit ok", "integration": "integ ok"}
    assert out["tasks"]["envs"]["result"] == ["staging", "production"]
    assert out["skipped"] == [] and out["failed"] == []
    result, events = run_json(root, "ci-cd", *env, "--env", "DEPLOY_ENABLED=true")
    assert output_of(events)["tasks"]["deploy"]["result"] == "deployed"
    # the terminal view names the tasks
    shown = ff("run", "ci-cd", *env, cwd=root)
    assert shown.returncode == 0, describe(shown)
    for label in ("Build", "Health check", "Unit tests", "Integration tests", "Deploy if enabled › else",
                  "Deploy to environments: staging", "Deploy to environments: production"):
        assert label in shown.stdout, shown.stdout
    assert_no_traceback(shown.stdout, shown.stderr)
    tree = ff("graph", "ci-cd", cwd=root)
    assert tree.returncode == 0 and "└── → Tests (tests) [parallel]" in tree.stdout, tree.stdout
    assert "else: echo 'Deployment skipped' [shell]" in tree.stdout, tree.stdout  # unnamed: by what it does
    chart = ff("graph", "ci-cd", "--mermaid", cwd=root)
    assert chart.stdout.startswith("flowchart TD") and "t_build --> t_tests" in chart.stdout


def test_scheduled_maintenance_with_health_checks_and_clean_ups(tmp_path: Path, server: str) -> None:
    root = make_project(tmp_path, {"workflows/maintenance.yaml": MAINTENANCE, "tmp/a.tmp": "x", "tmp/keep": "k",
                                   "logs/app.log": "old lines\n"})
    listed = ff("workflows", "--json", cwd=root)
    assert json.loads(listed.stdout)[0]["schedule"] == "0 3 * * *"
    result, events = run_json(root, "maintenance", "--env", f"BASE_URL={server}")
    out = output_of(events)
    assert result.returncode == 0, describe(result)
    assert out["tasks"]["api"]["result"]["version"] == "1.2.3"
    assert out["tasks"]["status"]["status_code"] == 204
    assert out["tasks"]["tmp"]["result"] == "1" and (root / "logs/app.log").read_text() == ""
    assert _Handler.posted == [{"version": "1.2.3", "left": "1"}]
    assert out["failed"] == ["broken"]  # tolerated: the run completed
    assert len([e for e in events if e["type"] == "step.retrying" and e["task"] == "broken"]) == 1
    # without the server, the health checks fail, the clean-ups are skipped and the alert runs
    result, events = run_json(root, "maintenance", "--env", "BASE_URL=http://127.0.0.1:9")
    message = failure_of(events)
    assert "api" in message and "status" in message and "skipped: cleanup, notify" in message, message
    alert = [e for e in events if e["type"] == "step.completed" and e["task"] == "alert"]
    assert alert and alert[0]["logs"][0]["text"] == "alert"


def test_development_automation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, {
        "workflows/automation.yaml": AUTOMATION, "workflows/greet.py": GREET, "tools.py": TOOLS,
        "migrations/001_files.sql": "CREATE TABLE files (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
        "migrations/002_index.sql": "-- names are looked up\nCREATE INDEX files_name ON files(name);\n",
        "raw/one.csv": "A,B\n\nC\n", "raw/two.csv": "X\n", "Dockerfile": "FROM python:3.12-slim\n"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(DOCKER_STANDIN)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # the stand-in comes first
    with Live("run", "automation", "--json", cwd=root) as live:
        asked = live.wait_event(lambda e: e["type"] == "input.requested", 60)
        assert asked["prompt"] == "Release demo?" and asked["task"] == "approve"
        run_id = asked["run_id"]
        answered = ff("answer", run_id, "true", "--quiet", cwd=root)
        assert answered.returncode == 0, describe(answered)
        waiting = live.wait_event(lambda e: e["type"] == "run.waiting" and e.get("reason") == "event", 60)
        assert waiting["task"] == "merged" and waiting["event_type"] == "merged"
        sent = ff("send-event", run_id, "merged", '{"sha": "abc"}', "--quiet", cwd=root)
        assert sent.returncode == 0, describe(sent)
        final = live.wait_event(lambda e: e["type"] in ("run.completed", "run.failed"), 60)
    assert final["type"] == "run.completed", final
    out = final["output"]
    assert out["tasks"]["setup"]["result"] == {"applied": ["001_files.sql", "002_index.sql"], "skipped": []}
    assert out["tasks"]["count"]["result"] == [{"n": 2}]
    assert out["tasks"]["summary"]["result"] == {"files": ["cleaned/one.csv", "cleaned/two.csv"], "rows": 2}
    assert (root / "cleaned/one.csv").read_text() == "a,b\nc\n"
    assert out["tasks"]["smoke"]["result"] == "ok" and out["tasks"]["greet"]["result"] == "hello demo"
    assert out["tasks"]["merged"]["result"] == {"sha": "abc"}
    calls = (bin_dir / "docker-calls.log").read_text().splitlines()
    assert calls == ["build -t demo:dev .", "run --rm -e MODE=test demo:dev python -c print('ok')"]
    with sqlite3.connect(root / "data/app.db") as db:
        assert [r[0] for r in db.execute("SELECT name FROM files ORDER BY id")] == ["demo", "second"]
    # a second run applies no migration again; a failing migration rolls back every one of its run
    (root / "migrations/003_bad.sql").write_text("CREATE TABLE more (x);\nINSERT INTO nowhere VALUES (1);\n")
    (root / "workflows/migrate.yaml").write_text(
        "name: migrate\ntasks:\n  - {id: m, type: database, connection: data/app.db, migration: migrations}\n")
    _, events = run_json(root, "migrate")
    assert "migration 003_bad.sql failed" in failure_of(events)
    with sqlite3.connect(root / "data/app.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "more" not in tables


def test_a_file_outside_the_workflow_folders_runs_directly(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/keep.json": {"name": "keep", "tasks": [
        {"id": "a", "type": "sleep", "duration": 0}]}, "elsewhere/once.yaml": (
        "name: once\ntasks:\n  - {id: hi, type: shell, command: 'echo hi ${env.WHO}'}\n")})
    _, events = run_json(root, str(root / "elsewhere/once.yaml"), "--env", "WHO=you")
    assert output_of(events)["tasks"]["hi"]["result"] == "hi you"
    assert "once" not in ff("workflows", cwd=root).stdout  # run, not registered for good
    detached = ff("run", str(root / "elsewhere/once.yaml"), "--detach", cwd=root)
    assert detached.returncode == 2 and "not in the project's workflow folders" in detached.stderr, describe(detached)


def test_env_is_refused_for_a_python_workflow(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/greet.py": GREET})
    result = ff("run", "greet", "--env", "X=1", cwd=root)
    assert result.returncode == 2 and "'greet' is a Python workflow" in result.stderr, describe(result)
