"""The one HTTP API, host-agnostic: the local server and the Worker both hand requests to `Router`.

Everything a client can get wrong ends as a 4xx with ``{"error": {"code", "message", "field"}}``;
nothing here touches a host API, so it runs unchanged inside a Python Worker.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from ..console import assets, is_console_path
from ..engine.errors import FlareflowError
from ..engine.limits import DEFAULT_MAX_BODY
from ..engine.status import STATUSES
from ..engine.wirejson import loads_bounded, lone_surrogate_field
from ..migrations.runs_index import PRUNE_LIMIT, prune_filter
from .ai_routes import ai_calls_response, ai_config_response, api_workflow_response
from .backend import Backend
from .http import HttpError, Request, Response, StreamRequest

RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
ID_PREFIX = re.compile(r"^[0-9a-f]{1,64}$")
PUBLIC = {"/health", "/openapi.json"}  # and the console's page and assets (`is_public`)
MAX_SEQ = 2**53  # event sequence numbers a client may name (after=, Last-Event-ID): JSON-safe integers

Handler = Callable[[Request, str], Awaitable[Response | StreamRequest]]
_openapi_cache: dict[str, Any] = {}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document kept in the package (``flareflow/worker/openapi.json``)."""
    if not _openapi_cache:
        text = resources.files("flareflow.worker").joinpath("openapi.json").read_text(encoding="utf-8")
        _openapi_cache.update(json.loads(text))
    return _openapi_cache


def is_public(path: str) -> bool:
    """Answered without the token: health, the API document and the console (whose data calls need it)."""
    path = path.rstrip("/") or "/"
    return path in PUBLIC or is_console_path(path)


def _check_text(fields: dict[str, Any], raw: str | bytes, code: str, what: str = "body") -> None:
    """400 naming the top-level field whose value (or key) holds a lone surrogate."""
    found = lone_surrogate_field(fields, raw, what)
    if found is not None:
        raise HttpError(400, code, found[1], found[0])


def api_error(exc: Exception) -> HttpError:
    """The API error for an engine error (the same codes over HTTP and in WebSocket error frames)."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, FlareflowError) and exc.code is not None:  # the wire form the error carries
        return HttpError(exc.http_status, exc.code, str(exc), exc.field, retry_after=exc.retry_after)
    return HttpError(500, "internal_error", f"{type(exc).__name__}: {exc}")


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        value = loads_bounded(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, "invalid_json", f"request body is not valid JSON: {exc}", "body") from None
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_body", "request body must be a JSON object", "body")
    _check_text(value, request.body, "invalid_text")
    return value


def _string(body: dict[str, Any], name: str, *, required: bool, max_len: int = 256) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise HttpError(400, "missing_field", f"'{name}' is required", name)
        return None
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, "invalid_field", f"'{name}' must be a non-empty string", name)
    if len(value) > max_len:
        raise HttpError(400, "invalid_field", f"'{name}' is longer than {max_len} characters", name)
    return value


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _int_value(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer from a query parameter or header: ASCII digits only (``int()`` also takes
    ``1_000``, spaces and other scripts' digits), and never an ``int()`` of thousands of digits."""
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise HttpError(400, "invalid_parameter", f"'{name}' must be an integer", name)
    digits = raw.lstrip("+-").lstrip("0") or "0"
    value = None if len(digits) > 20 else (-1 if raw.startswith("-") else 1) * int(digits)
    if value is None or not low <= value <= high:
        raise HttpError(400, "invalid_parameter", f"'{name}' must be between {low} and {high}", name)
    return value


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    return _int_value(query.get(name), name, default, low, high)


def _canonical(value: Any) -> str:
    """JSON text that is equal for equal JSON values (object key order does not count)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_STREAM_PATH = re.compile(r"^/runs/[^/]+/(ws|events)$")


def _wants_json(headers: dict[str, str]) -> bool:
    """``GET /runs/{id}/events`` answers JSON instead of SSE (``Accept: application/json``)."""
    accept = headers.get("accept", "")
    return "application/json" in accept and "text/event-stream" not in accept


def _browser_stream(method: str, path: str, headers: dict[str, str]) -> bool:
    """A request a browser makes without being able to set headers: a WebSocket upgrade, an EventSource."""
    match = _STREAM_PATH.match(path) if method == "GET" else None
    return match is not None and (match.group(1) == "ws" or not _wants_json(headers))


def _bool_param(query: dict[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise HttpError(400, "invalid_parameter", f"'{name}' must be true or false", name)


class Router:
    """Routes, authorises and validates; the `Backend` does the work."""

    def __init__(self, backend: Backend, *, token: str | None, max_body: int = DEFAULT_MAX_BODY,
                 version: str = "0") -> None:
        self.backend = backend
        self.token = token
        self.max_body = max_body
        self.version = version
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"^/$"), self._console),
            ("GET", re.compile(r"^/console/[^/]+$"), self._console),
            ("GET", re.compile(r"^/health$"), self._health),
            ("GET", re.compile(r"^/openapi\.json$"), self._openapi),
            ("GET", re.compile(r"^/workflows$"), self._workflows),
            ("POST", re.compile(r"^/runs$"), self._start),
            ("GET", re.compile(r"^/runs$"), self._list),
            ("POST", re.compile(r"^/runs/prune$"), self._prune),
            ("GET", re.compile(r"^/runs/([^/]+)$"), self._get),
            ("DELETE", re.compile(r"^/runs/([^/]+)$"), self._delete),
            ("GET", re.compile(r"^/runs/([^/]+)/events$"), self._events),
            ("GET", re.compile(r"^/runs/([^/]+)/ws$"), self._ws),
            ("POST", re.compile(r"^/runs/([^/]+)/events$"), self._send_event),
            ("POST", re.compile(r"^/runs/([^/]+)/input$"), self._input),
            ("POST", re.compile(r"^/runs/([^/]+)/cancel$"), self._cancel),
            ("POST", re.compile(r"^/runs/([^/]+)/pause$"), self._pause),
            ("POST", re.compile(r"^/runs/([^/]+)/resume$"), self._resume),
            ("POST", re.compile(r"^/runs/([^/]+)/retry$"), self._retry),
            ("POST", re.compile(r"^/runs/([^/]+)/restart$"), self._restart),
            ("GET", re.compile(r"^/ai/calls$"), self._ai_calls),
            ("GET", re.compile(r"^/ai/config$"), self._ai_config),
            ("PUT", re.compile(r"^/ai/config$"), self._ai_config),
            ("POST", re.compile(r"^/api/workflow$"), self._api_workflow),
        ]

    # -- entry -----------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response | StreamRequest:
        """Answer one request. Never raises for anything a client sends."""
        try:
            return await self._dispatch(request)
        except HttpError as exc:
            return exc.response()
        except FlareflowError as exc:
            if exc.code is None:  # not an API error: the host's own 500 handling
                raise
            return api_error(exc).response()

    def authorized(self, headers: dict[str, str], query: dict[str, str], *, query_token: bool = False) -> bool:
        """Bearer token in ``Authorization`` (or, with ``query_token``, ``?token=``), constant time."""
        if self.token is None:
            return True
        supplied = ""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            supplied = auth[7:].strip()
        elif query_token and "token" in query:
            supplied = query["token"]
        return hmac.compare_digest(supplied.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def check_access(self, method: str, path: str, headers: dict[str, str], query: dict[str, str]) -> None:
        """What can be decided from the request line and headers alone, so a host can call it before it
        reads a body: the token (401), then a declared body over the limit (413). Raises HttpError.

        ``?token=`` is honoured only where a browser cannot set a header: the WebSocket upgrade and the
        SSE stream (``EventSource``); elsewhere it is a 401 saying to use the Authorization header."""
        path = path.rstrip("/") or "/"
        if not is_public(path) and self.token is not None:
            browser_stream = _browser_stream(method, path, headers)
            if not self.authorized(headers, query, query_token=browser_stream):
                if "token" in query and not browser_stream and not headers.get("authorization"):
                    raise HttpError(401, "unauthorized", "a token in the query string (?token=) is accepted only "
                                   "on the WebSocket and SSE streams; send it in the Authorization header "
                                   "(Authorization: Bearer TOKEN)")
                raise HttpError(401, "unauthorized", "missing or wrong bearer token")
        length = headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and (
                len(length) > 18 or int(length) > self.max_body):
            raise HttpError(413, "payload_too_large", f"request body is larger than {self.max_body} bytes", "body")

    def precheck(self, method: str, path: str, headers: dict[str, str], query: dict[str, str]) -> Response | None:
        """`check_access` as a response: the answer to send without reading the body, or None to go on."""
        try:
            self.check_access(method, path, headers, query)
        except HttpError as exc:
            return exc.response()
        return None

    async def _dispatch(self, request: Request) -> Response | StreamRequest:
        path = request.path.rstrip("/") or "/"
        self.check_access(request.method, path, request.headers, request.query)
        if len(request.body) > self.max_body:
            raise HttpError(413, "payload_too_large", f"request body is larger than {self.max_body} bytes", "body")
        allowed = []
        # HEAD is GET without the body (the hosts' HTTP layers drop it): uptime checks, curl -I
        wanted = "GET" if request.method == "HEAD" else request.method
        # a path a route without a run id matches (/runs/prune) is never taken for a run id
        fixed = any(not pattern.groups and pattern.match(path) for _, pattern, _ in self._routes)
        for method, pattern, handler in self._routes:
            match = None if fixed and pattern.groups else pattern.match(path)
            if match is None:
                continue
            if method != wanted:
                allowed.append(method)
                continue
            run_id = match.group(1) if match.groups() else ""
            if run_id and not RUN_ID.match(run_id):
                raise HttpError(404, "run_not_found", f"no run '{run_id[:80]}'", "run_id")
            return await handler(request, run_id)
        if allowed:
            methods = sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set()))
            raise HttpError(405, "method_not_allowed", f"{request.method} is not allowed here; use "
                           + ", ".join(sorted(set(allowed))), allow=methods)
        raise HttpError(404, "not_found", f"no route {request.path[:200]}")

    # -- handlers --------------------------------------------------------------------------
    async def _console(self, request: Request, _: str) -> Response:
        """The console's page (``/``) and hashed assets: the same bytes and headers on every host."""
        path = request.path.rstrip("/") or "/"
        found = assets().get(path)
        if found is None:
            raise HttpError(404, "not_found", f"no console file {path[:200]}")
        return Response(200, found.body, found.headers)

    async def _health(self, request: Request, _: str) -> Response:
        return Response(200, {"status": "ok", "version": self.version})

    async def _openapi(self, request: Request, _: str) -> Response:
        return Response(200, openapi_document())

    async def _workflows(self, request: Request, _: str) -> Response:
        return Response(200, {"workflows": self.backend.workflows()})

    async def _start(self, request: Request, _: str) -> Response:
        body = _json_body(request)
        unknown = sorted(set(body) - {"workflow", "input", "idempotency_key"})
        if unknown:
            raise HttpError(400, "unknown_field", f"unknown field '{unknown[0]}'", unknown[0])
        workflow = _string(body, "workflow", required=True)
        key = _string(body, "idempotency_key", required=False)
        key_field = "idempotency_key"
        header_key = request.headers.get("idempotency-key")
        if key is None and header_key is not None:  # validated like the body key, never truncated
            key_field = "Idempotency-Key"
            key = _string({key_field: header_key}, key_field, required=False)
        respond_async = "respond-async" in request.headers.get("prefer", "").lower()
        run, created = await self.backend.start(str(workflow), body.get("input"), key, respond_async)
        queued = run.get("status") == "queued"
        if not created and not queued and (run.get("workflow") != workflow
                                           or _canonical(run.get("input")) != _canonical(body.get("input"))):
            # a retry repeats its request exactly; anything else reusing the key is a client bug
            raise HttpError(409, "idempotency_conflict", f"idempotency key '{key}' already started run "
                           f"{run.get('id')} with a different workflow or input; use a new key", key_field)
        status = 202 if queued else 201 if created else 200
        return Response(status, run, {"location": f"/runs/{run['id']}"})

    async def _list(self, request: Request, _: str) -> Response:
        status = request.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise HttpError(400, "invalid_parameter", "'status' must be one of " + ", ".join(STATUSES), "status")
        cursor = request.query.get("cursor") or None
        if cursor is not None and not RUN_ID.match(cursor):
            raise HttpError(400, "invalid_parameter", "'cursor' is not a cursor this API returned", "cursor")
        limit = _int_param(request.query, "limit", 50, 1, 500)
        workflow = request.query.get("workflow") or None
        prefix = (request.query.get("id_prefix") or "").lower() or None
        if prefix is not None and not ID_PREFIX.match(prefix):
            raise HttpError(400, "invalid_parameter", "'id_prefix' must be 1 to 64 hexadecimal characters",
                            "id_prefix")
        runs, next_cursor = await self.backend.list_runs(workflow, status, limit, cursor, prefix)
        return Response(200, {"runs": runs, "next_cursor": next_cursor})

    async def _get(self, request: Request, run_id: str) -> Response:
        return Response(200, await self.backend.get(run_id))

    async def _events(self, request: Request, run_id: str) -> Response | StreamRequest:
        after = _int_param(request.query, "after", 0, 0, MAX_SEQ)
        # an EventSource reconnecting sends the last id it saw: the same bounds as ?after=
        after = max(after, _int_value(request.headers.get("last-event-id"), "Last-Event-ID", 0, 0, MAX_SEQ))
        follow = _bool_param(request.query, "follow", True)
        await self.backend.get(run_id)  # 404 before a stream starts
        if _wants_json(request.headers):
            limit = _int_param(request.query, "limit", 1000, 1, 10_000)
            return Response(200, {"events": await self.backend.events(run_id, after, limit)})
        return StreamRequest("sse", run_id, after, follow)

    async def _ws(self, request: Request, run_id: str) -> StreamRequest:
        if request.headers.get("upgrade", "").lower() != "websocket":
            raise HttpError(400, "websocket_required", "this endpoint needs a WebSocket upgrade")
        after = _int_param(request.query, "after", 0, 0, MAX_SEQ)
        await self.backend.get(run_id)
        return StreamRequest("ws", run_id, after, True)

    async def _send_event(self, request: Request, run_id: str) -> Response:
        body = _json_body(request)
        event_type = _string(body, "type", required=True)
        await self.backend.send_event(run_id, str(event_type), body.get("payload"))
        return Response(202, {"delivered": True, "run_id": run_id, "type": event_type})

    async def _input(self, request: Request, run_id: str) -> Response:
        body = _json_body(request)
        if "value" not in body:
            raise HttpError(400, "missing_field", "'value' is required", "value")
        step = _string(body, "step", required=False)
        key = await self.backend.answer(run_id, body["value"], step)
        return Response(202, {"delivered": True, "run_id": run_id, "step": key})

    async def _cancel(self, request: Request, run_id: str) -> Response:
        reason = _string(_json_body(request), "reason", required=False, max_len=1000) or "cancelled via API"
        return Response(200, await self.backend.cancel(run_id, reason))

    async def _pause(self, request: Request, run_id: str) -> Response:
        reason = _string(_json_body(request), "reason", required=False, max_len=1000) or "paused via API"
        return Response(200, await self.backend.pause(run_id, reason))

    async def _resume(self, request: Request, run_id: str) -> Response:
        return Response(200, await self.backend.resume(run_id))

    async def _retry(self, request: Request, run_id: str) -> Response:
        _only(_json_body(request), set())
        return Response(200, await self.backend.retry(run_id))

    async def _restart(self, request: Request, run_id: str) -> Response:
        body = _json_body(request)
        _only(body, {"from_step"})
        run = await self.backend.restart(run_id, _string(body, "from_step", required=False))
        return Response(201, run, {"location": f"/runs/{run['id']}"})

    async def _delete(self, request: Request, run_id: str) -> Response:
        await self.backend.delete(run_id)
        return Response(200, {"deleted": True, "id": run_id})

    async def _prune(self, request: Request, _: str) -> Response:
        body = _json_body(request)
        _only(body, {"older_than", "status", "dry_run", "limit"})
        if isinstance(body.get("older_than"), str):
            _string(body, "older_than", required=True, max_len=100)
        older_than, statuses = prune_filter(body.get("older_than"), body.get("status"))
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise HttpError(400, "invalid_field", "'dry_run' must be true or false", "dry_run")
        limit = body.get("limit", PRUNE_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PRUNE_LIMIT:
            raise HttpError(400, "invalid_field", f"'limit' must be an integer from 1 to {PRUNE_LIMIT}", "limit")
        ids = await self.backend.prune(older_than, statuses, dry_run, limit)
        # "more": the limit was reached, so more runs may match (call again; a dry run lists the same ones)
        return Response(200, {"runs": ids, "dry_run": dry_run, "more": len(ids) == limit})


    async def _ai_calls(self, request: Request, _: str) -> Response:
        return await ai_calls_response(self.backend, request.query)

    async def _ai_config(self, request: Request, _: str) -> Response:
        return await ai_config_response(self.backend, _json_body(request) if request.method == "PUT" else None)

    async def _api_workflow(self, request: Request, _: str) -> Response:
        return await api_workflow_response(self.backend, _json_body(request))


def _only(body: dict[str, Any], known: set[str]) -> None:
    """400 naming the first field of ``body`` that is not one of ``known``."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown field '{unknown[0][:80]}'", unknown[0][:80])
