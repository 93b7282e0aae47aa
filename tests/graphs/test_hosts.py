"""A task graph of http, python, sleep, wait_event, input and database tasks over the HTTP API, on both
hosts: ``flareflow serve --local`` and real workerd through the harness (the build ships the graph as
JSON; the Worker's ports are ``fetch``, the project's D1 binding ``INDEX`` and its vars for ``${env.X}``).
Own project, own module."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import stored_events, wait_finished, wait_until
from tests.api.hosts import HOSTS, make_server

PYPROJECT = """\
[project]
name = "graph-hosts"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""

TOOLS = '''\
"""Helpers the graph's python task calls."""


def double(value):
    return value * 2
'''

GRAPH = {
    "name": "graph-tour",
    "description": "Every task type a Worker runs",
    "inputs": {"type": "object", "properties": {"who": {"type": "string"}}},
    "tasks": [
        {"id": "fetch", "name": "Fetch", "type": "http", "url": "${env.TARGET}/data?who=${input.who}",
         "response": "json", "timeout": 10000},
        {"id": "double", "name": "Double", "type": "python", "function": "workflows.tools:double",
         "depends_on": ["fetch"], "inputs": {"value": "${tasks.fetch.result.value}"}},
        {"id": "nap", "name": "Nap", "type": "sleep", "duration": "1s", "depends_on": ["double"]},
        {"id": "go", "name": "Go signal", "type": "wait_event", "event": "go", "depends_on": ["nap"]},
        {"id": "ok", "name": "Confirm", "type": "input", "prompt": "Store ${tasks.double.result}?",
         "schema": {"type": "boolean"}, "depends_on": ["go"]},
        {"id": "schema", "name": "Schema", "type": "database", "binding": "INDEX", "migration": "db"},
        {"id": "store", "name": "Store", "type": "database", "binding": "INDEX", "depends_on": ["ok", "schema"],
         "when": "${tasks.ok.result}",
         "transaction": [{"query": "INSERT INTO graph_notes VALUES (?, ?)",
                          "params": ["${tasks.double.result}", "${tasks.go.result.by}"]},
                         "INSERT INTO graph_notes VALUES (0, 'zero')"]},
        {"id": "read", "name": "Read back", "type": "database", "binding": "INDEX", "depends_on": ["store"],
         "query": "SELECT sum(v) AS total, group_concat(who) AS who FROM graph_notes"},
    ],
}


BAD_MIGRATION = {"name": "bad-migration", "tasks": [
    {"id": "m", "type": "database", "binding": "INDEX", "migration": "baddb"}]}
PROBE = {"name": "probe", "tasks": [
    {"id": "tables", "type": "database", "binding": "INDEX",
     "query": "SELECT name FROM sqlite_master WHERE name IN ('half_done', 'graph_notes') ORDER BY name"}]}


def project_writer(target: str) -> Callable[[Path], Path]:
    """The project, with ``TARGET`` among the Worker's vars (``${env.TARGET}`` reads it on Cloudflare)."""

    def write_project(root: Path) -> Path:
        return _write(root, PYPROJECT + f'\n[tool.flareflow.worker]\nvars = {{ TARGET = "{target}" }}\n')

    return write_project


def _write(root: Path, pyproject: str) -> Path:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (root / "workflows" / "__init__.py").write_text("", encoding="utf-8")
    (root / "workflows" / "tools.py").write_text(TOOLS, encoding="utf-8")
    (root / "workflows" / "tour.json").write_text(json.dumps(GRAPH, indent=2), encoding="utf-8")
    (root / "workflows" / "bad.json").write_text(json.dumps(BAD_MIGRATION), encoding="utf-8")
    (root / "workflows" / "probe.json").write_text(json.dumps(PROBE), encoding="utf-8")
    (root / "baddb").mkdir()
    (root / "baddb" / "001_ok.sql").write_text("CREATE TABLE half_done (x INTEGER);\n", encoding="utf-8")
    (root / "baddb" / "002_bad.sql").write_text("INSERT INTO nowhere VALUES (1);\n", encoding="utf-8")
    (root / "db").mkdir()
    (root / "db" / "001_notes.sql").write_text("CREATE TABLE graph_notes (v INTEGER);\n", encoding="utf-8")
    (root / "db" / "002_who.sql").write_text("-- who stored it\nALTER TABLE graph_notes ADD COLUMN who TEXT;\n",
                                             encoding="utf-8")
    return root


class _Data(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"value": 21, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def target() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Data)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("kind", sorted(HOSTS))
def test_a_graph_of_worker_task_types_runs_on_each_host(kind: str, tmp_path: Path, target: str) -> None:
    server = make_server(kind, tmp_path, project_writer(target))
    # locally ${env.TARGET} comes from the run's overrides; on workerd from the Worker's vars
    overrides = {"$env": {"TARGET": target}} if kind == "local" else {}
    try:
        asyncio.run(_tour(server, overrides))
    finally:
        server.stop()


async def _tour(server: Any, overrides: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as client:
        listed = (await client.get("/workflows")).json()
        tour = next(w for w in (listed["workflows"] if isinstance(listed, dict) else listed)
                    if w["name"] == "graph-tour")
        assert tour["description"] == "Every task type a Worker runs"
        started = await client.post("/runs", json={"workflow": "graph-tour",
                                                   "input": {"who": "ada", **overrides}})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]

        async def waits_for(kind: str) -> bool:
            run = (await client.get(f"/runs/{run_id}")).json()
            assert run["status"] not in ("failed", "completed"), json.dumps(run)[:2000]
            return any(w["kind"] == kind for w in run.get("waiting") or [])

        await wait_until(lambda: waits_for("event"), 60, "the run to wait for the go event")
        sent = await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": {"by": "test"}})
        assert sent.status_code in (200, 202), sent.text
        await wait_until(lambda: waits_for("input"), 60, "the run to ask")
        answered = await client.post(f"/runs/{run_id}/input", json={"value": True})
        assert answered.status_code in (200, 202), answered.text
        run = await wait_finished(client, run_id, 60)
        events = await stored_events(client, run_id)
        assert run["status"] == "completed", (json.dumps(run)[:3000], server.output()[-3000:])
        out = run["output"]
        assert out["tasks"]["fetch"]["result"] == {"value": 21, "path": "/data?who=ada"}
        assert out["tasks"]["double"]["result"] == 42
        assert out["tasks"]["go"]["result"] == {"by": "test"}
        assert out["tasks"]["schema"]["result"] == {"applied": ["001_notes.sql", "002_who.sql"], "skipped": []}
        assert out["tasks"]["read"]["result"] == [{"total": 42, "who": "test,zero"}]
        assert sorted(out["ran"]) == sorted(t["id"] for t in GRAPH["tasks"])
        tagged = {e["task"] for e in events if e["type"] in ("step.completed", "run.waiting", "input.requested")}
        assert {"fetch", "double", "nap", "go", "ok", "schema", "store", "read"} <= tagged
        # a failing migration rolls back the whole folder (on workerd: one D1 batch)
        bad = await client.post("/runs", json={"workflow": "bad-migration"})
        failed = await wait_finished(client, bad.json()["id"], 60)
        assert failed["status"] == "failed" and "nowhere" in json.dumps(failed["error"]), failed["error"]
        probe = await client.post("/runs", json={"workflow": "probe"})
        probed = await wait_finished(client, probe.json()["id"], 60)
        assert probed["output"]["tasks"]["tables"]["result"] == [{"name": "graph_notes"}]
        names = [e["name"] for e in events if e["type"] == "step.completed"]
        assert names.index("Fetch") < names.index("Double") < names.index("Store")  # the live view's names
