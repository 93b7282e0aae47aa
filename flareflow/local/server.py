"""``flareflow serve --local``: the host-agnostic router on Starlette + uvicorn, over the embedded runtime.

The ASGI layer only translates: HTTP requests become `flareflow.worker.http.Request`, JSON responses
go back as they are, and the two streaming endpoints (SSE and WebSocket) pump the backend's gapless
event stream. Unfinished runs resume when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..engine.errors import FlareflowError
from ..engine.sockets import (
    FINISHED_REASON,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    SSE_KEEPALIVE,
    SSE_RETRY,
    FrameError,
    close_reason,
    error_frame,
    live_sse_frame,
    oversized,
    parse_client_frame,
    sse_frame,
)
from ..worker.http import HttpError, Request, StreamRequest
from ..worker.router import Router
from .backend import LIVE_SEQ, LocalBackend
from .scheduler import SCHEDULED_PATH, LocalScheduler, handle_scheduled

log = logging.getLogger("flareflow.local.server")

KEEPALIVE_SECONDS = 15.0
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class _JSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:  # a lone surrogate stored before such text was refused: escape it
            return json.dumps(content, separators=(",", ":")).encode("ascii")


def _reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """The router's answer: JSON, or a ``bytes`` body (the console's files) as it is."""
    if isinstance(body, bytes):
        return Response(body, status_code=status, headers=headers)
    return _JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: StarletteRequest, limit: int, timeout: float) -> bytes | None:
    """The body, or None when the client went away mid-upload (nothing to answer, nothing worth a
    traceback). HttpError 413 as soon as it grows past ``limit`` (a huge upload is never buffered
    whole), 408 when it has not all arrived within ``timeout`` seconds of the headers."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, "payload_too_large", f"request body is larger than {limit} bytes", "body")
                chunks.append(chunk)
    except ClientDisconnect:
        log.debug("client went away during the body of %s %s", request.method, request.url.path)
        return None
    except TimeoutError:
        raise HttpError(408, "request_timeout", f"the request body did not arrive within {timeout:g} s",
                       "body") from None
    return b"".join(chunks)


def create_app(router: Router, backend: LocalBackend, *, scheduler: LocalScheduler | None = None,
               on_startup: Any = None, on_shutdown: Any = None, body_timeout: float = 30.0) -> Starlette:
    """The ASGI application: one catch-all HTTP route, the WebSocket route and, with a ``scheduler``,
    ``wrangler dev``'s manual cron trigger (``GET /cdn-cgi/handler/scheduled?cron=...&time=MS``).

    A request body must arrive within ``body_timeout`` seconds (408); the header timeout and the
    connection cap sit below ASGI, in `flareflow.local.guard`."""

    async def http_endpoint(request: StarletteRequest) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)
        # 401 and 413 before a byte of the body is read; uvicorn discards what the client still sends
        # (bounded by the header timeout, see flareflow.local.guard)
        refused = router.precheck(request.method, request.url.path, headers, query)
        if refused is not None:
            return _reply(refused.status, refused.body, refused.headers)
        try:
            body = await _read_body(request, router.max_body, body_timeout)
        except HttpError as exc:
            # 413: uvicorn reads and drops the rest as it comes; 408: the client stalled, nothing will
            # come, so this connection carries no further request
            return _reply(exc.status, exc.response().body, {"connection": "close"} if exc.status == 408 else None)
        if body is None:
            return Response(status_code=400)  # never sent: the client is gone
        result = await router.handle(Request(request.method, request.url.path, query, headers, body))
        if isinstance(result, StreamRequest):  # only SSE here: the router refuses /ws without an upgrade
            return StreamingResponse(
                _sse(backend, result),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        return _reply(result.status, result.body, result.headers)

    async def ws_endpoint(websocket: WebSocket) -> None:
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        result = await router.handle(Request("GET", websocket.url.path, dict(websocket.query_params), headers))
        if not isinstance(result, StreamRequest):
            await websocket.send_denial_response(_reply(result.status, result.body, result.headers))
            return
        await websocket.accept()
        await _serve_socket(websocket, backend, result, router.max_body)

    async def scheduled_endpoint(request: StarletteRequest) -> Response:
        assert scheduler is not None
        headers = {k.lower(): v for k, v in request.headers.items()}
        result = await handle_scheduled(scheduler, router, Request(request.method, request.url.path,
                                                                   dict(request.query_params), headers))
        return _reply(result.status, result.body, result.headers)

    routes = [
        WebSocketRoute("/runs/{run_id}/ws", ws_endpoint),
        *([Route(SCHEDULED_PATH, scheduled_endpoint, methods=METHODS)] if scheduler is not None else []),
        Route("/{path:path}", http_endpoint, methods=METHODS),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown()

    return Starlette(routes=routes, lifespan=lifespan)


async def _sse(backend: LocalBackend, stream: StreamRequest) -> AsyncIterator[str]:
    """SSE frames (``id``, ``event``, ``data``) with keep-alive comments while the run is quiet."""
    queue: asyncio.Queue[tuple[int, str, str] | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in backend.stream(stream.run_id, stream.after, stream.follow):
                queue.put_nowait(item)
        finally:
            queue.put_nowait(None)

    task = asyncio.ensure_future(pump())
    try:
        yield SSE_RETRY
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield SSE_KEEPALIVE
                continue
            if item is None:
                break
            seq, type_, text = item
            yield live_sse_frame(type_, text) if seq == LIVE_SEQ else sse_frame(seq, type_, text)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _serve_socket(websocket: WebSocket, backend: LocalBackend, stream: StreamRequest,
                        max_frame: int) -> None:
    """Send the run's events; accept input/event frames; a malformed frame closes this socket only."""

    async def send_events() -> None:
        async for _, _, text in backend.stream(stream.run_id, stream.after, True):
            await websocket.send_text(text)
        await websocket.close(NORMAL_CLOSURE, FINISHED_REASON)

    sender = asyncio.ensure_future(send_events())
    try:
        while True:
            receive = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                receive.cancel()
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            too_big = oversized(raw, max_frame)  # as an HTTP body would get 413
            if too_big is not None:
                await websocket.close(MESSAGE_TOO_BIG, too_big)
                return
            try:
                frame = parse_client_frame(raw)
            except FrameError as exc:
                await websocket.close(POLICY_VIOLATION, close_reason(str(exc)))
                return
            try:
                if frame["type"] == "input":
                    await backend.answer(stream.run_id, frame["value"], frame["step"])
                else:
                    await backend.send_event(stream.run_id, frame["event_type"], frame["payload"])
            except FlareflowError as exc:  # same code/message/field as the HTTP endpoint would answer
                await websocket.send_text(error_frame(exc))
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
