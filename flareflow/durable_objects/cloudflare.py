"""The thin Cloudflare shell around `RunCoordinator`: one Python Durable Object (``RunObject``) per run.

It adapts the host to the coordinator's ports and nothing more:

- **Sql** over ``ctx.storage.sql`` with ``transactionSync`` for atomic multi-statement writes;
  migrations run once per object under ``blockConcurrencyWhile``.
- **Alarm**: the object's single alarm is the earliest of the run's timers (sleeps, retry backoffs,
  wait timeouts) and an *inactivity* deadline; when the latter fires, every in-memory cache is
  dropped on purpose, so the next activation proves it rebuilds from SQL (hibernation).
- **Sockets**: hibernatable WebSockets accepted with ``acceptWebSocket``; each socket's last
  delivered seq lives in its attachment, so a woken object resumes every client without gaps.
- Activations run in ``alarm()`` (scheduled "now" after a start or a delivery), so a failure is
  retried by the platform and a request never waits for a workflow step.

Only the standard library, the ``workers`` SDK and Pyodide's FFI are used here (Worker-side code).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import js
from pyodide.ffi import create_once_callable, to_js
from workers import DurableObject, Response

from ..ai.frames import TOKEN, token_frame
from ..engine import capture
from ..engine.errors import FlareflowError, InvalidInput, RunNotFound, StorageError, wire_error
from ..engine.events import TERMINAL_EVENTS
from ..engine.limits import DEFAULT_MAX_BODY, DEFAULT_PAYLOAD_THRESHOLD
from ..engine.registry import Registry
from ..engine.sockets import (
    FINISHED_REASON,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    SSE_RETRY,
    FrameError,
    catch_up,
    close_reason,
    error_frame,
    live_sse_frame,
    oversized,
    parse_client_frame,
    sse_frame,
)
from ..engine.status import TERMINAL, RunStatus
from ..migrations.runs_index import UPSERT, upsert_params
from .ai_ports import cloudflare_ai_host
from .coordinator import RunCoordinator
from .jsglue import JSON_HEADERS, js_param, jsnull, json_response, py_value
from .ports import Row, SystemClock, is_storage_fault_text

#: Drop in-memory state after this long without activity (the object may hibernate meanwhile).
INACTIVITY_SECONDS = 30.0


class DoSql:
    """The `Sql` port over ``ctx.storage.sql``.

    workerd reports a refusing store as a JS error ("database or disk is full: SQLITE_FULL"); those
    become `StorageError`, as the port requires (SQLITE_FULL also rolls back and resets the object).
    """

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._sql = storage.sql
        self._in_tx = False

    def exec(self, sql: str, *params: Any) -> list[Row]:
        try:
            cursor = self._sql.exec(sql, *[js_param(p) for p in params])
            return [tuple(py_value(v) for v in row) for row in cursor.raw().toArray()]
        except Exception as exc:
            raise _storage_error(exc) from None

    def transaction(self, fn: Any, *, durable: bool = True, site: str = "") -> Any:
        if self._in_tx:
            return fn()
        box: list[Any] = []

        def body() -> None:
            self._in_tx = True
            try:
                box.append(fn())
            finally:
                self._in_tx = False

        try:
            self._storage.transactionSync(create_once_callable(body))
        except Exception as exc:
            raise _storage_error(exc) from None
        return box[0] if box else None


def _storage_error(exc: Exception) -> Exception:
    """``exc`` itself, or a `StorageError` when its message says the store refused the operation."""
    if isinstance(exc, StorageError) or not is_storage_fault_text(str(exc)):
        return exc
    return StorageError(f"run storage refused the operation ({str(exc)[:200]})")


class R2Blobs:
    """The `Blobs` port on R2 (``PAYLOADS``). Writes keep the text in SQL (``blobs.pending``, same
    transaction as the reference) until R2 confirms the upload; reads come from a per-object cache
    that `prefetch` fills before the coordinator reads the run."""

    def __init__(self, bucket: Any, sql: DoSql) -> None:
        self.bucket = bucket
        self.sql = sql
        self.cache: dict[str, str] = {}
        self.uploads: list[tuple[str, Any]] = []

    def put(self, key: str, text: str) -> None:
        self.cache[key] = text
        self.sql.exec("UPDATE blobs SET pending = ? WHERE key = ?", text, key)
        self.uploads.append((key, self.bucket.put(key, text)))

    def get(self, key: str) -> str:
        try:
            return self.cache[key]
        except KeyError:
            raise StorageError(f"payload {key} was not fetched from R2") from None

    async def confirm(self) -> None:
        """Await the uploads; then drop their SQL copies."""
        while self.uploads:
            batch, self.uploads = self.uploads, []
            for key, promise in batch:
                await promise
                self.sql.exec("UPDATE blobs SET pending = NULL WHERE key = ?", key)

    async def prefetch(self) -> None:
        """Fetch every payload the run references (re-uploading any a crash left unconfirmed)."""
        for key, pending in self.sql.exec("SELECT key, pending FROM blobs"):
            if pending is not None:
                self.cache[str(key)] = str(pending)
                self.uploads.append((str(key), self.bucket.put(key, pending)))
            elif key not in self.cache:
                found = await self.bucket.get(key)
                if found is None or found is jsnull:
                    raise StorageError(f"payload {key} is missing from R2")
                self.cache[str(key)] = str(await found.text())
        await self.confirm()


class DoAlarm:
    """Remembers the coordinator's wish; the shell applies it (async) before the handler returns."""

    def __init__(self) -> None:
        self.wanted: float | None = None
        self.dirty = False

    def set(self, at: float | None) -> None:
        self.wanted = at
        self.dirty = True


def error_response(exc: Exception) -> Any:
    """Engine errors as the API's JSON error bodies and headers: the wire form the error carries (the
    router answers the same), else a 500."""
    wire = wire_error(exc) if isinstance(exc, FlareflowError) else None
    if wire is None:
        wire = (500, {"error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}",
                                "field": None}}, {})
    status, body, headers = wire
    return Response(json.dumps(body), status=status, headers={**JSON_HEADERS, **headers})


class RunObjectBase(DurableObject):  # type: ignore[misc]
    """Base of the generated ``RunObject`` (the Durable Object class): set ``registry`` in the subclass."""

    registry: Registry
    #: Fault injection for tests (a `flareflow.durable_objects.faults.Faults`); None in production.
    faults: Any = None

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.js_ctx = getattr(ctx, "_ctx", ctx)
        self.js_env = getattr(env, "_env", env)  # the raw bindings: exact JS semantics, no SDK conversions
        self.storage = self.js_ctx.storage
        self.sql = DoSql(self.storage)
        self.alarm_port = DoAlarm()
        self.clock = SystemClock()
        self.obj: RunCoordinator | None = None
        self.streams: list[Any] = []
        self.stream_writes: list[Any] = []
        self.pending: list[Any] = []
        threshold = getattr(self.js_env, "FLAREFLOW_PAYLOAD_THRESHOLD", DEFAULT_PAYLOAD_THRESHOLD)
        self.threshold = int(threshold or DEFAULT_PAYLOAD_THRESHOLD)
        bucket = getattr(self.js_env, "PAYLOADS", None)
        self.blobs = R2Blobs(bucket, self.sql) if bucket is not None and bucket is not jsnull else None
        #: ``run.ai``'s ports: the AI binding or an OpenAI-compatible server, KV, D1 (`.ai_ports`)
        self.ai_host = cloudflare_ai_host(self.js_env, self.clock.now, self._live)
        # a step's print and logging are its logs; wrangler's console (and `wrangler tail`) shows them too
        capture.install(echo=True)
        self.js_ctx.blockConcurrencyWhile(create_once_callable(self._migrate))

    async def _migrate(self) -> None:
        from .migrate import migrate

        migrate(self.sql, "run")

    # -- the coordinator, built lazily and dropped on inactivity ------------------------------
    def coordinator(self, run_id: str | None = None) -> RunCoordinator:
        if self.obj is None:
            if run_id is None:
                rows = self.sql.exec("SELECT id FROM run")
                if not rows:
                    raise RunNotFound("no run in this object")
                run_id = str(rows[0][0])
            sql: Any = self.sql
            blobs: Any = self.blobs
            if self.faults is not None:
                sql = self.faults.sql(sql, run_id)
                blobs = None if blobs is None else self.faults.blobs(blobs, run_id)
            obj = RunCoordinator(run_id, sql, self.alarm_port, self.clock, self.registry,
                            on_status=self._index_status, blobs=blobs, payload_threshold=self.threshold)
            obj.listeners.append(self._broadcast)
            obj.ai = self.ai_host
            self.obj = obj
        return self.obj

    def _index_status(self, summary: dict[str, Any]) -> None:
        """Keep the D1 index in step with every status change (awaited before the handler returns)."""
        index = getattr(self.js_env, "INDEX", None)
        if index is None:
            return
        statement = index.prepare(UPSERT).bind(*[js_param(p) for p in upsert_params(summary)])
        self.pending.append(statement.run())

    async def _settle(self) -> None:
        """Confirm R2 uploads, await index writes, apply the alarm wish (multiplexed with inactivity)."""
        if self.blobs is not None:
            await self.blobs.confirm()
        while self.pending:
            batch, self.pending = self.pending, []
            for promise in batch:
                await promise
        if self.alarm_port.dirty:
            wanted = self.alarm_port.wanted
        else:  # a fresh instance has no wish: keep the earliest stored timer, never push it out
            rows = self.sql.exec("SELECT MIN(fire_at) FROM timers")
            wanted = None if not rows or rows[0][0] is None else float(rows[0][0])
        if self.obj is not None:
            idle = self.clock.now() + INACTIVITY_SECONDS
            wanted = idle if wanted is None else min(wanted, idle)
        if wanted is None:
            await self.storage.deleteAlarm()
        else:
            await self.storage.setAlarm(int(wanted * 1000))

    # -- events to clients -----------------------------------------------------------------------
    def _broadcast(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        terminal = event["type"] in TERMINAL_EVENTS
        for ws in self.js_ctx.getWebSockets():
            self._send_gapless(ws, event["seq"], text)
            if terminal:
                with contextlib.suppress(Exception):  # already closing
                    ws.close(NORMAL_CLOSURE, FINISHED_REASON)
        for writer in list(self.streams):
            self._stream_write(writer, _sse_bytes(event["seq"], event["type"], text))
            if event["type"] in TERMINAL_EVENTS:
                self._stream_write(writer, None)
                self.streams.remove(writer)

    def _live(self, run_id: str, step: str, text: str) -> None:
        """A live frame (a streamed AI answer's ``ai.token``) to the clients connected now: not logged,
        so a socket's attachment (its last seq) does not move and nothing of it is caught up later."""
        frame = json.dumps(token_frame(run_id, step, text), separators=(",", ":"))
        for ws in self.js_ctx.getWebSockets():
            with contextlib.suppress(Exception):  # closing
                ws.send(frame)
        for writer in list(self.streams):
            self._stream_write(writer, _encode(live_sse_frame(TOKEN, frame)))

    def _stream_write(self, writer: Any, chunk: Any) -> None:
        """Queue an SSE write. Never awaited in the handler: a stream's write resolves only when the
        client reads it, so awaiting before the response is returned would deadlock."""
        promise = writer.write(chunk) if chunk is not None else writer.close()
        self.stream_writes.append(promise)
        del self.stream_writes[:-1000]

    def _send_gapless(self, ws: Any, seq: int, text: str) -> None:
        last = _attachment(ws)
        if seq <= last:
            return
        if seq > last + 1:  # woken after hibernation or a missed send: fill the gap from SQL
            missed, _, _ = catch_up((e for e in self.coordinator().events(after=last) if e["seq"] < seq), last)
            for event in missed:
                ws.send(json.dumps(event, separators=(",", ":")))
        ws.send(text)
        ws.serializeAttachment(to_js({"last": seq}, dict_converter=js.Object.fromEntries))

    # -- HTTP from the Worker --------------------------------------------------------------------
    async def fetch(self, request: Any) -> Any:
        raw = getattr(request, "js_object", request)
        url = urlsplit(str(raw.url))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if self.blobs is not None:
                await self.blobs.prefetch()  # the coordinator reads synchronously: payloads first
            if "/_ff/" in url.path:  # the Worker's internal operations
                body = json.loads(await raw.text() or "{}") if str(raw.method) == "POST" else {}
                return await self._command(url.path.rsplit("/", 1)[-1], body, query)
            if url.path.endswith("/ws"):
                return self._accept_socket(raw, query)
            if url.path.endswith(("/sse", "/events")) and str(raw.method) == "GET":
                return self._sse(query)
            raise InvalidInput(f"no such route in the run object: {url.path}")
        except FlareflowError as exc:
            return error_response(exc)
        finally:
            await self._settle()

    async def _command(self, op: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        if op == "start":
            obj = self.coordinator(body["run_id"]) if self.obj is None else self.obj
            if not obj.exists:
                obj.create(body["workflow"], body.get("input"), body.get("idempotency_key"),
                           trigger=body.get("trigger"), restart=body.get("restart"))
                self.wake()  # activate in alarm(), right away
                return json_response(obj.describe(), 201)
            return json_response(obj.describe(), 200)
        obj = self.coordinator()
        if op == "describe":
            return json_response(obj.describe())
        if op == "events":
            after = int(query.get("after", "0") or 0)
            limit = int(query["limit"]) if query.get("limit") else None
            return json_response({"events": obj.events(after, limit)})
        if op == "event":
            obj.deliver_event(body.get("type", ""), body.get("payload"))
        elif op == "input":
            step = obj.answer(body.get("value"), body.get("step"))
            self.wake()
            return json_response({"step": step}, 202)
        elif op in ("cancel", "pause"):
            obj.command(op, body.get("reason") or ("cancelled via API" if op == "cancel" else "paused via API"))
            return json_response(obj.describe())
        elif op in ("resume", "retry"):
            obj.command(op)
        elif op == "fork":
            return json_response(obj.fork(body.get("from_step")))
        elif op == "delete":
            await self._delete(obj)
            return json_response({"deleted": True})
        else:
            raise InvalidInput(f"unknown operation '{op}'")
        self.wake()
        return json_response(obj.describe(), 202 if op == "event" else 200)

    async def _delete(self, obj: RunCoordinator) -> None:
        """A finished run's storage goes, with its payloads in R2; the object is empty afterwards (the
        Worker removes the index row and the cached description)."""
        obj.require_finished()
        if self.blobs is not None:
            for key in obj.store.blob_keys():
                await self.blobs.bucket.delete(key)
        for ws in self.js_ctx.getWebSockets():
            with contextlib.suppress(Exception):  # already closing
                ws.close(NORMAL_CLOSURE, FINISHED_REASON)
        await self.storage.deleteAll()
        self.obj = None
        self.streams.clear()
        await self._migrate()  # empty tables again: later requests get "no run", not a SQL error
        self.alarm_port.set(None)

    def _accept_socket(self, raw: Any, query: dict[str, str]) -> Any:
        obj = self.coordinator()
        client, server = js.Object.values(js.WebSocketPair.new())
        self.js_ctx.acceptWebSocket(server)
        after = int(query.get("after", "0") or 0)
        server.serializeAttachment(to_js({"last": after}, dict_converter=js.Object.fromEntries))
        batch, last, _ = catch_up(obj.events(after=after), after)  # the Sockets port's one rule
        for event in batch:
            server.send(json.dumps(event, separators=(",", ":")))
        server.serializeAttachment(to_js({"last": last}, dict_converter=js.Object.fromEntries))
        if obj.status in TERMINAL:
            server.close(NORMAL_CLOSURE, FINISHED_REASON)
        return Response(None, status=101, web_socket=client)

    def _sse(self, query: dict[str, str]) -> Any:
        obj = self.coordinator()
        after = int(query.get("after", "0") or 0)
        follow = query.get("follow", "true").lower() not in ("0", "false", "no")
        stream = js.TransformStream.new()
        writer = stream.writable.getWriter()
        self._stream_write(writer, _encode(SSE_RETRY))
        batch, _, finished = catch_up(obj.events(after=after), after)
        for event in batch:
            text = json.dumps(event, separators=(",", ":"))
            self._stream_write(writer, _sse_bytes(event["seq"], event["type"], text))
        if finished or not follow or obj.status in TERMINAL:
            self._stream_write(writer, None)
        else:
            self.streams.append(writer)
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        return Response(stream.readable, headers=headers)

    # -- hibernatable WebSocket handlers (JS names, as the runtime calls them) -------------------
    async def webSocketMessage(self, ws: Any, message: Any) -> None:
        limit = int(getattr(self.js_env, "FLAREFLOW_MAX_BODY", DEFAULT_MAX_BODY) or DEFAULT_MAX_BODY)
        raw = message if isinstance(message, str) else b"\0" * int(getattr(message, "byteLength", 0))
        too_big = oversized(raw, limit)  # as an HTTP body would get 413
        if too_big is not None:
            ws.close(MESSAGE_TOO_BIG, too_big)
            return
        try:
            if self.blobs is not None:
                await self.blobs.prefetch()
            obj = self.coordinator()
            try:
                frame = parse_client_frame(str(message))
            except FrameError as exc:  # a malformed frame closes this socket only
                ws.close(POLICY_VIOLATION, close_reason(str(exc)))
                return
            try:
                if frame["type"] == "input":
                    obj.answer(frame["value"], frame["step"])
                else:
                    obj.deliver_event(frame["event_type"], frame["payload"])
                self.wake()
            except FlareflowError as exc:  # same code/message/field as the HTTP endpoint would answer
                ws.send(error_frame(exc))
        finally:
            await self._settle()

    async def webSocketClose(self, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        with contextlib.suppress(Exception):  # already closed
            ws.close(code, reason)

    async def webSocketError(self, ws: Any, error: Any) -> None:
        return None

    # -- the alarm: due timers, activation, inactivity ----------------------------------------------
    def wake(self) -> None:
        """Ask for an activation now, durably: a ``wake`` row in the timers table, then the alarm."""
        now = self.clock.now()
        self.sql.exec("INSERT INTO timers (key, kind, fire_at) VALUES ('__wake__', 'wake', ?) "
                      "ON CONFLICT(key) DO UPDATE SET fire_at = excluded.fire_at", now)
        self.alarm_port.set(now)

    async def alarm(self, alarm_info: Any = None) -> None:
        try:
            rows = self.sql.exec("SELECT (SELECT MIN(fire_at) FROM timers), "
                                 "(SELECT fire_at FROM timers WHERE key = '__wake__'), (SELECT status FROM run)")
            due, wake, status = rows[0] if rows else (None, None, None)
            interrupted = status == RunStatus.RUNNING  # an activation died with the isolate: pick it up again
            # the store refused the last activation: this alarm is its retry (the coordinator's backoff)
            retry = self.obj is not None and self.obj.abandoned is not None
            if (due is not None and float(due) <= self.clock.now()) or interrupted or retry:
                if self.blobs is not None:
                    await self.blobs.prefetch()
                obj = self.coordinator()
                await obj.activate()
                if obj.abandoned is None:
                    if wake is not None:  # a delivery during the activation set a newer wake: keep that one
                        self.sql.exec("DELETE FROM timers WHERE key = '__wake__' AND fire_at <= ?", wake)
                    self.alarm_port.set(obj.store.next_timer())
                # else: keep the coordinator's backoff wish (and any wake row) for the retry
            else:
                # only the inactivity deadline: drop every in-memory cache; SQL holds everything
                if not self.streams:
                    self.obj = None
                self.alarm_port.set(None if due is None else float(due))
        finally:
            await self._settle()


def _attachment(ws: Any) -> int:
    data = ws.deserializeAttachment()
    if data is None or data is jsnull:
        return 0
    try:
        return int(data.last)
    except Exception:
        return 0


def _encode(text: str) -> Any:
    return js.TextEncoder.new().encode(text)


def _sse_bytes(seq: int, type_: str, text: str) -> Any:
    return _encode(sse_frame(seq, type_, text))
