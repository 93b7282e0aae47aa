"""Small async helpers for talking to a test server with raw httpx / websockets (not flareflow.client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

T = TypeVar("T")
TERMINAL = ("run.completed", "run.failed", "run.cancelled")


def arun(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run an async test body with a hard timeout (no pytest-asyncio)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def http(server: Any, *, auth: bool = True, **kwargs: Any) -> httpx.AsyncClient:
    headers = dict(server.headers) if auth else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10.0, **kwargs)


async def start(client: httpx.AsyncClient, workflow: str, input: Any = None) -> str:
    response = await client.post("/runs", json={"workflow": workflow, "input": input})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def stored_events(client: httpx.AsyncClient, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    response = await client.get(f"/runs/{run_id}/events", params={"after": after, "follow": "false"},
                                headers={"accept": "application/json"})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_type(client: httpx.AsyncClient, run_id: str, type_: str, timeout: float = 10.0) -> None:
    async def seen() -> bool:
        return any(e["type"] == type_ for e in await stored_events(client, run_id))

    await wait_until(seen, timeout, f"{type_} on run {run_id}")


async def wait_finished(client: httpx.AsyncClient, run_id: str, timeout: float = 15.0) -> dict[str, Any]:
    run: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal run
        response = await client.get(f"/runs/{run_id}")
        assert response.status_code == 200, response.text
        run = response.json()
        return run["status"] in ("completed", "failed", "cancelled")

    await wait_until(done, timeout, f"run {run_id} to finish")
    return run


def ws_url(server: Any, run_id: str, after: int = 0, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"{server.ws_base}/runs/{run_id}/ws?after={after}{extra}"


def ws_open(server: Any, run_id: str, after: int = 0, *, auth: bool = True, **query: str) -> Any:
    # close_timeout: how long to wait for the server to drop TCP once the closing handshake is done (close
    # codes and reasons come from the close frames, not from this). workerd served through the harness
    # never drops it after a close it initiated, so the default (10 s) would be added to every such socket.
    return ws_connect(ws_url(server, run_id, after, **query), additional_headers=server.headers if auth else {},
                      max_size=None, open_timeout=10, close_timeout=2)


async def server_closed(socket: ClientConnection, timeout: float) -> tuple[int, str]:
    """Wait for the server's close frame -- what a client sees as "the server closed" -- and return its
    code and reason; then drop the connection.

    Not ``wait_closed()``: that waits for the TCP connection to end, which workerd delays until the
    Durable Object is evicted after a server-initiated close of a hibernatable socket (gap H1,
    ``harness/repro/h1_ws_close.mjs``), while the close frame itself arrives at once on both hosts.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while socket.protocol.close_rcvd is None:
        if loop.time() > deadline:
            raise AssertionError(f"no close frame from the server within {timeout}s")
        await asyncio.sleep(0.01)
    received = socket.protocol.close_rcvd
    # the server spoke first (our close frame only answered it)
    assert socket.protocol.close_rcvd_then_sent is not False, "the client closed first"
    socket.transport.abort()
    return received.code, received.reason


async def ws_read_until(socket: ClientConnection, stop: Callable[[dict[str, Any]], bool],
                        raw: list[str] | None = None) -> list[dict[str, Any]]:
    """Frames until ``stop(frame)`` holds (that frame included)."""
    frames = []
    async for message in socket:
        assert isinstance(message, str), "server sent a binary frame"
        if raw is not None:
            raw.append(message)
        frame = json.loads(message)
        frames.append(frame)
        if stop(frame):
            break
    return frames


async def ws_collect(server: Any, run_id: str, after: int = 0, raw: list[str] | None = None) -> list[dict[str, Any]]:
    """Every frame of the run's socket until its terminal event."""
    async with ws_open(server, run_id, after) as socket:
        return await ws_read_until(socket, lambda f: f.get("type") in TERMINAL, raw)


def parse_sse(lines: list[str]) -> list[dict[str, Any]]:
    """SSE lines -> frames ``{"id", "event", "data", "retry", "comment"}`` (data kept as text)."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if current:
                frames.append(current)
            current = {}
            continue
        if line.startswith(":"):
            current.setdefault("comment", []).append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            current["data"] = value if "data" not in current else current["data"] + "\n" + value
        else:
            current[name] = value
    if current:
        frames.append(current)
    return frames


async def sse_frames(server: Any, run_id: str, *, after: int | None = None, last_event_id: str | None = None,
                     follow: bool | None = None, stop_after: int | None = None) -> list[dict[str, Any]]:
    """The SSE frames with an ``id`` (event frames) of one GET; ``stop_after`` closes early."""
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if follow is not None:
        params["follow"] = "true" if follow else "false"
    headers = {**server.headers, "accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    events: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(10.0, read=30.0)) as client, \
            client.stream("GET", f"/runs/{run_id}/events", params=params, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        async for line in response.aiter_lines():
            lines.append(line)
            if line == "":
                frames = [f for f in parse_sse(lines) if "id" in f]
                lines = []
                events.extend(frames)
                if stop_after is not None and len(events) >= stop_after:
                    break
        events.extend(f for f in parse_sse(lines) if "id" in f)
    return events


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["seq"]) for e in events]


def assert_gapless(events: list[dict[str, Any]], first: int = 1) -> None:
    got = seqs(events)
    assert got == list(range(first, first + len(got))), f"not gapless / duplicated: {got}"


def event_time(event: dict[str, Any]) -> float:
    """An event's ``at`` (ISO 8601, UTC) as seconds since the epoch."""
    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00")).timestamp()


def assert_resumed_after_restart(server: Any, events: list[dict[str, Any]]) -> None:
    """The run was unfinished when the server's last process went down, and a later process finished it:
    at least one step and the run's completion are stamped after ``server.down_at``. (The local server
    also logs how many unfinished runs it resumed at start-up; a Worker has no start-up to log from.)"""
    assert server.down_at is not None, "the server never went down"
    later = [e for e in events if event_time(e) > server.down_at]
    assert later and later[-1]["type"] == "run.completed", "the run finished before the restart"
    assert any(e["type"] == "step.completed" for e in later), "no step ran after the restart"
    if server.kind == "local":
        assert "resumed 1 unfinished run" in server.output(), "the run finished before the restart"
