"""The thin Cloudflare shell of the API: a Python ``WorkerEntrypoint`` hosting the shared `Router`.

- ``fetch``: the router answers; run operations go to the run's Durable Object (one per run, found
  by name), live streams (SSE, WebSocket) are forwarded to it as they are.
- ``GET /runs`` pages the D1 index (``INDEX``), which every object updates on each status change.
- Completed and cancelled runs are immutable, so their descriptions are cached in KV (``CACHE``)
  and served without waking the object (a failed one may be retried: it is always read from its
  object; a deleted run's entry is removed with it).
- ``scheduled``: starts the workflows whose schedule is the fired cron (the engine's one rule, shared with
  the local server), through the queue when there is one; ``run.started`` says ``trigger: "cron"``.
- ``queue``: the consumer of asynchronous starts (cron, ``Prefer: respond-async`` bursts), with
  ack/retry per message; the generated config adds a dead-letter queue.

Standard library, the ``workers`` SDK and Pyodide's FFI only.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import js
from workers import WorkerEntrypoint

from ..ai.config import CONFIG_KEY
from ..console import is_console_path
from ..durable_objects.jsglue import js_object, js_param, jsnull, json_response, py_value, to_python
from ..engine.cron import CRON_TRIGGER, cron_firing
from ..engine.errors import InvalidInput, RunNotFound, RunStateConflict, error_from_wire
from ..engine.ids import keyed_run_id, new_run_id
from ..engine.limits import DEFAULT_MAX_BODY
from ..engine.registry import Registry
from ..engine.status import TERMINAL, RunStatus
from ..migrations.ai_calls import list_query as ai_list_query
from ..migrations.ai_calls import listed as ai_listed
from ..migrations.runs_index import DELETE, list_query, listed, prune_query
from .http import HttpError, Request, StreamRequest
from .router import Router

VERSION = "0.1.0"
#: Statuses whose descriptions never change again (a failed run can be retried).
CACHED = frozenset({RunStatus.COMPLETED.value, RunStatus.CANCELLED.value})


def run_id_for(idempotency_key: str | None = None) -> str:
    """A keyed start gets the id derived from its key, so retries meet one object; else a new one."""
    return keyed_run_id(idempotency_key) if idempotency_key is not None else new_run_id(time.time())


class DoBackend:
    """`flareflow.worker.backend.Backend` over Durable Object stubs, D1, KV and the dispatch queue."""

    def __init__(self, env: Any, registry: Registry) -> None:
        self.env = getattr(env, "_env", env)  # the raw bindings: exact JS semantics, no SDK conversions
        env = self.env
        self.registry = registry
        self.index = getattr(env, "INDEX", None)
        self.cache = getattr(env, "CACHE", None)
        self.queue = getattr(env, "DISPATCH", None)

    def stub(self, run_id: str) -> Any:
        namespace = self.env.RUNS
        if hasattr(namespace, "getByName"):
            return namespace.getByName(run_id)
        return namespace.get(namespace.idFromName(run_id))

    async def call(self, run_id: str, op: str, body: dict[str, Any] | None = None,
                   query: str = "") -> tuple[int, Any]:
        init: dict[str, Any] = {"method": "POST" if body is not None else "GET"}
        if body is not None:
            init["body"] = json.dumps(body)
            init["headers"] = js_object({"content-type": "application/json"})
        request = js.Request.new(f"https://run.internal/runs/{run_id}/_ff/{op}{query}", js_object(init))
        response = await self.stub(run_id).fetch(request)
        status = int(response.status)
        data = json.loads(str(await response.text()) or "null")
        if status >= 400:  # the object's answer back into the engine error it stands for
            raise error_from_wire(status, (data or {}).get("error", {}))
        return status, data

    # -- Backend ---------------------------------------------------------------------------------
    def workflows(self) -> list[dict[str, Any]]:
        return self.registry.manifest()

    async def start(self, workflow: str, input: Any, idempotency_key: str | None,
                    respond_async: bool = False, *, trigger: str | None = None) -> tuple[dict[str, Any], bool]:
        self.registry.get(workflow)
        run_id = run_id_for(idempotency_key)
        message = {"run_id": run_id, "workflow": workflow, "input": input, "idempotency_key": idempotency_key}
        if trigger is not None:  # recorded on run.started by the object (through the queue too)
            message["trigger"] = trigger
        if respond_async and self.queue is not None:
            await self.queue.send(js_object(message))
            return {"id": run_id, "workflow": workflow, "status": "queued"}, True
        status, data = await self.call(run_id, "start", message)
        return data, status == 201

    async def get(self, run_id: str) -> dict[str, Any]:
        key = f"run:{run_id}"
        if self.cache is not None:
            cached = await self.cache.get(key)
            if cached is not None and cached is not jsnull:
                return dict(json.loads(str(cached)))
        _, data = await self.call(run_id, "describe")
        if self.cache is not None and data.get("status") in CACHED:
            await self.cache.put(key, json.dumps(data), js_object({"expirationTtl": 7 * 24 * 3600}))
        return dict(data)

    async def list_runs(self, workflow: str | None, status: str | None, limit: int,
                        cursor: str | None, id_prefix: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        if self.index is None:
            raise InvalidInput("listing runs needs the D1 index (tool.flareflow.resources.d1)")
        sql, params = list_query(workflow=workflow, status=status, cursor=cursor, limit=limit + 1,
                                 id_prefix=id_prefix)
        result = await self.index.prepare(sql).bind(*[js_param(p) for p in params]).all()
        rows = [to_python(row) for row in result.results]
        more = len(rows) > limit
        out = [listed({k: py_value(v) for k, v in row.items()}) for row in rows[:limit]]
        return out, (out[-1]["id"] if more and out else None)

    async def events(self, run_id: str, after: int, limit: int | None) -> list[dict[str, Any]]:
        query = f"?after={after}" + (f"&limit={limit}" if limit else "")
        _, data = await self.call(run_id, "events", query=query)
        return list(data["events"])

    def stream(self, run_id: str, after: int, follow: bool) -> Any:  # pragma: no cover - forwarded instead
        raise NotImplementedError("streams are forwarded to the run's Durable Object")

    async def send_event(self, run_id: str, event_type: str, payload: Any) -> None:
        await self.call(run_id, "event", {"type": event_type, "payload": payload})

    async def answer(self, run_id: str, value: Any, step: str | None) -> str:
        _, data = await self.call(run_id, "input", {"value": value, "step": step})
        return str(data["step"])

    async def cancel(self, run_id: str, reason: str) -> dict[str, Any]:
        return dict((await self.call(run_id, "cancel", {"reason": reason}))[1])

    async def pause(self, run_id: str, reason: str) -> dict[str, Any]:
        return dict((await self.call(run_id, "pause", {"reason": reason}))[1])

    async def resume(self, run_id: str) -> dict[str, Any]:
        return dict((await self.call(run_id, "resume", {}))[1])

    async def retry(self, run_id: str) -> dict[str, Any]:
        run = dict((await self.call(run_id, "retry", {}))[1])
        await self._forget(run_id)  # failed runs are not cached; one an older flareflow cached is stale now
        return run

    async def restart(self, run_id: str, from_step: str | None) -> dict[str, Any]:
        _, fork = await self.call(run_id, "fork", {"from_step": from_step})
        new_id = run_id_for()
        message = {"run_id": new_id, "workflow": fork["workflow"], "input": fork["input"], "restart": fork}
        return dict((await self.call(new_id, "start", message))[1])

    async def delete(self, run_id: str) -> None:
        await self.call(run_id, "delete", {})  # the object deletes its storage and its R2 payloads
        await self._unindex(run_id)
        await self._forget(run_id)

    async def _unindex(self, run_id: str) -> None:
        """The run's D1 rows go (`DELETE`: its index row, then its AI calls)."""
        if self.index is not None:
            for sql in DELETE:
                await self.index.prepare(sql).bind(run_id).run()

    async def prune(self, older_than: float, statuses: tuple[str, ...], dry_run: bool,
                    limit: int) -> list[str]:
        if self.index is None:
            raise InvalidInput("pruning runs needs the D1 index (tool.flareflow.resources.d1)")
        sql, params = prune_query(statuses, time.time() - older_than, limit)
        result = await self.index.prepare(sql).bind(*[js_param(p) for p in params]).all()
        ids = [str(to_python(row)["id"]) for row in result.results]
        if dry_run:
            return ids
        deleted = []
        for run_id in ids:
            try:
                await self.delete(run_id)
            except RunNotFound:  # an index row without its object: the row goes
                await self._unindex(run_id)
            except RunStateConflict:  # reopened since the index said finished (a retry): kept
                continue
            deleted.append(run_id)
        return deleted

    async def ai_calls(self, run_id: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
        if self.index is None:
            raise InvalidInput("the AI call log needs the D1 index (tool.flareflow.resources.d1)")
        sql, params = ai_list_query(run_id=run_id, model=model, limit=limit)
        result = await self.index.prepare(sql).bind(*[js_param(p) for p in params]).all()
        return [ai_listed({k: py_value(v) for k, v in to_python(row).items()}) for row in result.results]

    async def ai_config(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.cache is None:
            raise InvalidInput("the config:ai document lives in KV (tool.flareflow.resources.kv)")
        if document is not None:
            await self.cache.put(CONFIG_KEY, json.dumps(document, separators=(",", ":")))
        found = await self.cache.get(CONFIG_KEY)
        return None if found is None or found is jsnull else dict(json.loads(str(found)))

    async def finished(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            _, run = await self.call(run_id, "describe")
            if run.get("status") in TERMINAL or time.monotonic() >= deadline:
                return dict(run)
            await asyncio.sleep(0.1)

    async def _forget(self, run_id: str) -> None:
        if self.cache is not None:
            await self.cache.delete(f"run:{run_id}")


class WorkerBase(WorkerEntrypoint):  # type: ignore[misc]
    """Base of the generated ``Default`` entrypoint: set ``registry`` and ``manifest`` in the subclass."""

    registry: Registry
    manifest: dict[str, Any]

    def backend(self) -> DoBackend:
        return DoBackend(self.env, self.registry)

    async def fetch(self, request: Any) -> Any:
        raw = getattr(request, "js_object", request)
        url = urlsplit(str(raw.url))
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {str(pair[0]).lower(): str(pair[1]) for pair in raw.headers.entries()}
        js_env = getattr(self.env, "_env", self.env)
        token = getattr(js_env, "FLAREFLOW_TOKEN", None)
        if (token is None or token is jsnull or not str(token)) and url.path != "/health" \
                and not is_console_path(url.path):
            message = "the FLAREFLOW_TOKEN secret is not set: wrangler secret put FLAREFLOW_TOKEN"
            return json_response({"error": {"code": "not_configured", "field": None, "message": message}}, 503)
        router = Router(self.backend(), token=str(token or ""), version=VERSION,
                        max_body=int(getattr(js_env, "FLAREFLOW_MAX_BODY", DEFAULT_MAX_BODY) or DEFAULT_MAX_BODY))
        refused = router.precheck(str(raw.method), url.path, headers, query)  # 401 / 413 before the body
        if refused is not None:
            return json_response(refused.body, refused.status, refused.headers)
        body = b""
        if str(raw.method) in ("POST", "PUT", "PATCH"):
            body = bytes((await raw.arrayBuffer()).to_bytes())  # bytes as sent: invalid UTF-8 is a 400
        result = await router.handle(Request(str(raw.method), url.path, query, headers, body))
        if isinstance(result, StreamRequest):
            # the object streams; tell it where to start (after= or Last-Event-ID, as the router read it)
            follow = "true" if result.follow else "false"
            target = f"https://run.internal/runs/{result.run_id}/{result.kind}?after={result.after}&follow={follow}"
            return await self.backend().stub(result.run_id).fetch(js.Request.new(target, raw))
        return json_response(result.body, result.status, result.headers)

    async def scheduled(self, controller: Any, *rest: Any) -> None:
        """Start the workflows this cron firing names (`flareflow.engine.cron.cron_firing`, the rule the
        local server follows too), via the queue when one is bound. Each start is keyed by workflow and
        scheduled minute, so a repeated delivery of the same firing starts nothing new."""
        cron = str(getattr(controller, "cron", "") or "")
        when_ms = float(getattr(controller, "scheduledTime", time.time() * 1000))
        backend = self.backend()
        for start in cron_firing(self.registry, cron, when_ms / 1000):
            await backend.start(start.workflow, None, start.idempotency_key, respond_async=True,
                                trigger=CRON_TRIGGER)

    async def queue(self, batch: Any, *rest: Any) -> None:
        """Asynchronous starts: ack each message once its run exists; retry it on failure."""
        backend = self.backend()
        for message in batch.messages:
            body = to_python(message.body)
            try:
                if not isinstance(body, dict) or "workflow" not in body:
                    message.ack()  # malformed: retrying cannot help
                    continue
                run_id = body.get("run_id") or run_id_for(body.get("idempotency_key"))
                await backend.call(run_id, "start", {**body, "run_id": run_id})
                message.ack()
            except (HttpError, Exception):
                message.retry()
