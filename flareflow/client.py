"""Python client for the flareflow API (local server or Cloudflare Worker), on httpx and websockets.

::

    async with Client("http://127.0.0.1:8787", token="...") as ff:
        run = await ff.start("onboarding", {"email": "ada@example.com"})
        async for event in ff.events(run["id"]):
            print(event["seq"], event["type"])

`Client.events` survives dropped connections: it reconnects and resumes after the last ``seq`` it
yielded, so the caller sees every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Literal

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .engine.events import TERMINAL_EVENTS

TERMINAL = TERMINAL_EVENTS  # the events that end a run (one vocabulary, in the engine)


class ApiError(Exception):
    """The server answered with an error: ``status``, ``code``, ``message`` and the ``field`` at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Client:
    """Async client. ``url`` and ``token`` default to ``$FLAREFLOW_URL`` and ``$FLAREFLOW_TOKEN``."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 reconnect_delay: float = 0.2, max_reconnects: int = 50) -> None:
        base = url or os.environ.get("FLAREFLOW_URL")
        if not base:
            raise ValueError("no server URL: pass url= or set FLAREFLOW_URL")
        self.url = base.rstrip("/")
        self.token = token if token is not None else os.environ.get("FLAREFLOW_TOKEN")
        self.reconnect_delay = reconnect_delay
        self.max_reconnects = max_reconnects
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    # -- plumbing --------------------------------------------------------------------------
    async def _call(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> Any:
        content = None if json_body is None else json.dumps(json_body).encode()
        send_headers = {"content-type": "application/json", **(headers or {})}
        response = await self._http.request(method, path, content=content, params=params, headers=send_headers)
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            raise ApiError(response.status_code, str(error.get("code", "http_error")),
                           str(error.get("message", response.text[:200])), error.get("field"))
        return body

    # -- runs ------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/health")
        return result

    async def workflows(self) -> list[dict[str, Any]]:
        """The workflows the server declares."""
        body = await self._call("GET", "/workflows")
        return list(body["workflows"])

    async def start(self, workflow: str, input: Any = None, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Start a run; with ``idempotency_key`` a repeat returns the same run."""
        payload: dict[str, Any] = {"workflow": workflow, "input": input}
        if idempotency_key is not None:
            payload["idempotency_key"] = idempotency_key
        run: dict[str, Any] = await self._call("POST", "/runs", json_body=payload)
        return run

    async def get(self, run_id: str) -> dict[str, Any]:
        """Everything about one run: status, input, output, state, steps, open waits."""
        run: dict[str, Any] = await self._call("GET", f"/runs/{run_id}")
        return run

    async def list(self, *, workflow: str | None = None, status: str | None = None, limit: int = 50,
                   cursor: str | None = None, id_prefix: str | None = None) -> dict[str, Any]:
        """One page of runs, newest first: ``{"runs": [...], "next_cursor": ...}``; ``id_prefix``:
        only runs whose id starts with it."""
        params = {k: v for k, v in {"workflow": workflow, "status": status, "limit": limit,
                                    "cursor": cursor, "id_prefix": id_prefix}.items() if v is not None}
        page: dict[str, Any] = await self._call("GET", "/runs", params=params)
        return page

    async def send_event(self, run_id: str, event_type: str, payload: Any = None) -> None:
        """Deliver an external event to the run."""
        await self._call("POST", f"/runs/{run_id}/events", json_body={"type": event_type, "payload": payload})

    async def answer(self, run_id: str, value: Any, step: str | None = None) -> str:
        """Answer the run's open question (``step`` picks one when several are open)."""
        body: dict[str, Any] = {"value": value}
        if step is not None:
            body["step"] = step
        result = await self._call("POST", f"/runs/{run_id}/input", json_body=body)
        return str(result["step"])

    async def cancel(self, run_id: str, reason: str | None = None) -> dict[str, Any]:
        run: dict[str, Any] = await self._call("POST", f"/runs/{run_id}/cancel",
                                               json_body={"reason": reason} if reason else {})
        return run

    async def pause(self, run_id: str, reason: str | None = None) -> dict[str, Any]:
        run: dict[str, Any] = await self._call("POST", f"/runs/{run_id}/pause",
                                               json_body={"reason": reason} if reason else {})
        return run

    async def resume(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = await self._call("POST", f"/runs/{run_id}/resume", json_body={})
        return run

    async def retry(self, run_id: str) -> dict[str, Any]:
        """Continue a failed run from its failed steps (completed ones are not run again)."""
        run: dict[str, Any] = await self._call("POST", f"/runs/{run_id}/retry", json_body={})
        return run

    async def restart(self, run_id: str, from_step: str | None = None) -> dict[str, Any]:
        """A new run of the same workflow and input that reuses the results recorded before
        ``from_step`` (a step key or name; None: from the beginning); returns the new run."""
        body = {"from_step": from_step} if from_step is not None else {}
        run: dict[str, Any] = await self._call("POST", f"/runs/{run_id}/restart", json_body=body)
        return run

    async def delete(self, run_id: str) -> None:
        """Delete a finished run (its storage, index row and payloads)."""
        await self._call("DELETE", f"/runs/{run_id}")

    async def prune(self, older_than: str, status: str | builtins.list[str] | None = None, *, dry_run: bool = False,
                    limit: int | None = None) -> dict[str, Any]:
        """Delete (``dry_run``: list) finished runs older than ``older_than`` (``"30d"``), at most
        ``limit`` per call: ``{"runs": [ids], "dry_run", "more"}`` (``more``: call again)."""
        body: dict[str, Any] = {"older_than": older_than, "dry_run": dry_run}
        if status is not None:
            body["status"] = status
        if limit is not None:
            body["limit"] = limit
        page: dict[str, Any] = await self._call("POST", "/runs/prune", json_body=body)
        return page

    # -- events ----------------------------------------------------------------------------
    async def events(self, run_id: str, *, after: int = 0, follow: bool = True,
                     transport: Literal["ws", "sse"] = "ws", live: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Every event after ``after``, in order, exactly once; reconnects when the connection drops.

        ``live`` also yields the live frames that come while connected (``ai.token``: a streamed AI
        answer's pieces; no ``seq``, never replayed after a reconnect).

        With ``follow`` it ends after the run's terminal event (the server's stream ends there; a
        retried run's stream goes on past its earlier ``run.failed``); without, after the stored ones.
        """
        if not follow:  # the JSON form is paged (at most `limit` events per call): read until a page is empty
            last = after
            while True:
                body = await self._call("GET", f"/runs/{run_id}/events",
                                        params={"after": last, "follow": "false", "limit": 1000},
                                        headers={"accept": "application/json"})
                if not body["events"]:
                    return
                for event in body["events"]:
                    yield event
                last = body["events"][-1]["seq"]
        last = after
        failures = 0
        ended = False  # the latest event is terminal: in a retried run's log, run.retried follows one
        while True:
            source = self._ws_frames(run_id, last) if transport == "ws" else self._sse_frames(run_id, last)
            try:
                async for event in source:
                    failures = 0
                    if "seq" not in event:  # a live frame: not in the log
                        if live:
                            yield event
                        continue
                    if event.get("seq", 0) <= last:
                        continue
                    last = event["seq"]
                    ended = event["type"] in TERMINAL
                    yield event
                if ended:  # the server closes the stream after the run's last terminal event
                    return
            except ApiError:
                raise
            except (TimeoutError, OSError, httpx.TransportError, WebSocketException):
                pass
            failures += 1
            if failures > self.max_reconnects:
                raise ApiError(0, "connection_lost", f"lost the event stream of run {run_id} "
                               f"{self.max_reconnects} times in a row")
            await asyncio.sleep(min(5.0, self.reconnect_delay * failures))

    def _ws_url(self, run_id: str, after: int) -> str:
        scheme = "wss" if self.url.startswith("https") else "ws"
        return f"{scheme}{self.url[self.url.index(':'):]}/runs/{run_id}/ws?after={after}"

    async def _ws_frames(self, run_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with ws_connect(self._ws_url(run_id, after), additional_headers=headers,
                                  max_size=None, open_timeout=10, close_timeout=2) as socket:
                async for message in socket:
                    frame = json.loads(message)
                    if frame.get("type") == "error":
                        continue
                    yield frame
        except InvalidStatus as exc:
            status = exc.response.status_code
            try:
                error = json.loads(exc.response.body or b"{}").get("error", {})
            except ValueError:
                error = {}
            if 400 <= status < 500:
                raise ApiError(status, str(error.get("code", "http_error")),
                               str(error.get("message", f"HTTP {status}")), error.get("field")) from None
            raise OSError(f"WebSocket upgrade failed with HTTP {status}") from None
        except ConnectionClosed:
            return

    async def _sse_frames(self, run_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        async with self._http.stream("GET", f"/runs/{run_id}/events", params={"after": after},
                                     headers={"accept": "text/event-stream"},
                                     timeout=httpx.Timeout(10.0, read=60.0)) as response:
            if response.status_code >= 400:
                await response.aread()
                self._decode(response)
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    yield json.loads("\n".join(data))
                    data = []

    async def wait(self, run_id: str) -> dict[str, Any]:
        """Follow the run until it finishes; return the final run."""
        async for _ in self.events(run_id):
            pass
        return await self.get(run_id)


__all__ = ["ApiError", "Client"]
