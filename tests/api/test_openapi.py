"""The OpenAPI document: served as shipped, complete in both directions, valid OpenAPI 3.1.

Tried: /openapi.json (without a token) against ``flareflow/worker/openapi.json``; every (method, path)
of the document sent to a `Router` over a fake backend (must not be "no route" 404 or 405), every
route of the router matched to a documented (method, path), and every undocumented method on a
documented path answered 405; schemathesis loading and meta-validating the document (and rejecting
a deliberately broken copy, to show the validation is real); the live server's responses to one
well-formed request per operation validated against the documented response schemas.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from importlib import resources
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flareflow.console import assets
from flareflow.engine.errors import RunNotFound
from flareflow.worker.http import Request, Response, StreamRequest
from flareflow.worker.router import Router

from .helpers import arun, http, start, wait_finished

RUN_ID = "0123456789abcdef0123a"
TOKEN = "router-test-token"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def shipped_document() -> dict[str, Any]:
    text = resources.files("flareflow.worker").joinpath("openapi.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS]


class FakeBackend:
    """Answers every call with something plausible; RunNotFound for one id."""

    def workflows(self) -> list[dict[str, Any]]:
        return [{"name": "steps"}]

    def _run(self, run_id: str = RUN_ID) -> dict[str, Any]:
        return {"id": run_id, "workflow": "steps", "status": "running", "steps": [], "waiting": [], "last_seq": 1}

    async def start(self, workflow: str, input: Any, key: str | None,
                    respond_async: bool = False) -> tuple[dict[str, Any], bool]:
        return self._run(), True

    async def get(self, run_id: str) -> dict[str, Any]:
        if run_id != RUN_ID:
            raise RunNotFound(run_id)
        return self._run(run_id)

    async def list_runs(self, *args: Any) -> tuple[list[dict[str, Any]], str | None]:
        return [], None

    async def events(self, run_id: str, after: int, limit: int | None) -> list[dict[str, Any]]:
        return []

    async def stream(self, run_id: str, after: int, follow: bool):  # pragma: no cover - never iterated here
        yield 1, "run.started", "{}"

    async def send_event(self, run_id: str, event_type: str, payload: Any) -> None:
        return None

    async def answer(self, run_id: str, value: Any, step: str | None) -> str:
        return "q#1"

    async def cancel(self, run_id: str, reason: str) -> dict[str, Any]:
        return self._run(run_id)

    async def pause(self, run_id: str, reason: str) -> dict[str, Any]:
        return self._run(run_id)

    async def resume(self, run_id: str) -> dict[str, Any]:
        return self._run(run_id)

    async def retry(self, run_id: str) -> dict[str, Any]:
        return self._run(run_id)

    async def restart(self, run_id: str, from_step: str | None) -> dict[str, Any]:
        return self._run()

    async def delete(self, run_id: str) -> None:
        return None

    async def ai_calls(self, run_id: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
        return []

    async def ai_config(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        return document

    async def finished(self, run_id: str, timeout: float) -> dict[str, Any]:
        return {**self._run(run_id), "status": "completed", "output": {"result": "hi", "source": "ai"}}

    async def prune(self, older_than: float, statuses: tuple[str, ...], dry_run: bool, limit: int) -> list[str]:
        return []


BODIES = {
    ("POST", "/runs"): {"workflow": "steps"},
    ("POST", "/runs/prune"): {"older_than": "30d"},
    ("POST", "/runs/{run_id}/events"): {"type": "go"},
    ("POST", "/runs/{run_id}/input"): {"value": True},
    ("POST", "/api/workflow"): {"prompt": "hi"},
    ("PUT", "/ai/config"): {"temperature": 0.5},
}


def _ask(router: Router, method: str, path: str, body: Any = None) -> Response | StreamRequest:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {TOKEN}"}
    if path.endswith("/ws"):  # the WebSocket route answers 400 without an upgrade (tested in test_errors)
        headers["upgrade"] = "websocket"
    if "{file}" in path:  # a console file by its content-hashed name, as the page names it
        path = next(p for p in assets().paths() if p.startswith("/console/"))
    request = Request(method, path.replace("{run_id}", RUN_ID), {}, headers, raw)
    return asyncio.run(router.handle(request))


def test_served_document_is_the_shipped_one(server):
    async def body():
        async with http(server, auth=False) as client:
            response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == shipped_document()

    arun(body())


def test_every_documented_operation_is_routed():
    doc = shipped_document()
    router = Router(FakeBackend(), token=TOKEN)
    for method, path in operations(doc):
        result = _ask(router, method, path, BODIES.get((method, path)))
        if isinstance(result, StreamRequest):
            continue
        assert result.status < 400, f"{method} {path} -> {result.status} {result.body}"


def test_every_route_is_documented():
    doc = shipped_document()
    router = Router(FakeBackend(), token=TOKEN)
    documented = {(m, p.replace("{run_id}", RUN_ID).replace("{file}", "app.0123456789ab.js"))
                  for m, p in operations(doc)}
    routes = [(method, pattern) for method, pattern, _ in router._routes]
    assert len(routes) == len(documented)
    for method, pattern in routes:
        hits = [path for m, path in documented if m == method and pattern.match(path)]
        assert len(hits) == 1, f"route {method} {pattern.pattern} matches documented {hits}"
    # and a documented path answers 405 to every method it does not document
    for path, item in doc["paths"].items():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method.lower() in item:
                continue
            result = _ask(router, method, path)
            assert isinstance(result, Response) and result.status == 405, (method, path, result)


def test_document_is_valid_openapi_31():
    doc = shipped_document()
    assert doc["openapi"].startswith("3.1.")
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()
    loaded = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in loaded), loaded
    assert len(loaded) == len(operations(doc))
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)):
        assert ref in doc["components"]["schemas"]
    broken = copy.deepcopy(doc)
    broken["paths"]["/health"]["get"]["responses"] = "none"
    with pytest.raises(Exception):  # noqa: B017 - jsonschema_rs.ValidationError; any error shows validation ran
        schemathesis.openapi.from_dict(broken).validate()


def test_live_responses_match_the_documented_schemas(server):
    """One good request per operation, each response checked against the document by schemathesis."""
    schema = schemathesis.openapi.from_dict(shipped_document())

    async def prepare() -> tuple[str, str]:
        async with http(server) as client:
            done = await start(client, "steps", {"n": 2})
            await wait_finished(client, done)
            waiting = await start(client, "approval")
        return done, waiting

    done, waiting = arun(prepare())
    plan = [
        ("GET", "/health", {}, None, {}),
        ("GET", "/openapi.json", {}, None, {}),
        ("GET", "/workflows", {}, None, {}),
        ("GET", "/runs", {}, None, {"limit": 3}),
        ("POST", "/runs", {}, {"workflow": "steps", "input": {"n": 1}}, {}),
        ("GET", "/runs/{run_id}", {"run_id": done}, None, {}),
        ("GET", "/runs/{run_id}/events", {"run_id": done}, None, {"follow": False, "accept": "application/json"}),
        ("GET", "/runs/{run_id}/events", {"run_id": done}, None, {"follow": False, "accept": "text/event-stream"}),
        ("POST", "/runs/{run_id}/events", {"run_id": waiting}, {"type": "go"}, {}),
        ("POST", "/runs/{run_id}/pause", {"run_id": waiting}, {}, {}),
        ("POST", "/runs/{run_id}/resume", {"run_id": waiting}, None, {}),
        ("POST", "/runs/{run_id}/cancel", {"run_id": waiting}, {"reason": "done"}, {}),
        ("POST", "/runs/{run_id}/input", {"run_id": waiting}, {"value": True}, {}),  # 409 now: documented
        ("POST", "/runs/{run_id}/retry", {"run_id": waiting}, {}, {}),  # 409: it was cancelled, not failed
        ("POST", "/runs/{run_id}/restart", {"run_id": done}, {"from_step": "s1"}, {}),
        ("POST", "/runs/prune", {}, {"older_than": "30d", "status": "completed", "dry_run": True}, {}),
        ("DELETE", "/runs/{run_id}", {"run_id": done}, None, {}),
        ("GET", "/runs/{run_id}", {"run_id": "ffffffffffffffffffffff"}, None, {}),  # 404: documented
    ]
    for method, path, path_parameters, body, query in plan:
        operation = schema[path][method]
        accept = query.pop("accept", "application/json")
        kwargs: dict[str, Any] = {"path_parameters": path_parameters, "query": query}
        if body is not None:
            kwargs["body"] = body
            kwargs["media_type"] = "application/json"
        case = operation.Case(**kwargs)
        response = case.call(base_url=server.url, headers={**server.headers, "accept": accept}, timeout=10)
        assert response.status_code < 500, (method, path, response.text)
        checks = [not_a_server_error, status_code_conformance, content_type_conformance]
        if accept == "application/json":
            # schemathesis validates each SSE event against the text/event-stream schema; the document
            # declares the stream as one string (OpenAPI 3.1 style), so only JSON bodies are checked
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks)
