"""Streams that outlive their connection, and runs that outlive their server.

Tried: `flareflow.client.Client.events` (WS and SSE transports) following a run while the server is
restarted under it -- gracefully (SIGTERM) and by SIGKILL -- on the same port and project; a raw
WebSocket follower that records the last seq, loses the server to SIGKILL in the middle of a
`sleepy` nap or of a long `steps` run, and reconnects to a new server process with ``after=``.
Survived: the new process resumes the run from its database, the run finishes with the right output,
and every follower sees seqs 1..N exactly once, identical to the stored history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from flareflow.client import Client

from .helpers import (
    TERMINAL,
    arun,
    assert_gapless,
    assert_resumed_after_restart,
    http,
    start,
    stored_events,
    wait_finished,
    ws_open,
)


@pytest.mark.parametrize(("transport", "hard"), [("ws", False), ("ws", True), ("sse", True)])
def test_client_events_survive_a_server_restart(own_server, transport, hard):
    starts = own_server.starts

    async def body():
        async with http(own_server) as client:
            run_id = await start(client, "steps", {"n": 40, "delay": 0.05})
        seen: list[dict[str, Any]] = []
        restart: asyncio.Task[Any] | None = None
        async with Client(own_server.url, own_server.token, reconnect_delay=0.05, max_reconnects=200) as ff:
            async for event in ff.events(run_id, transport=transport):
                seen.append(event)
                if restart is None and event["seq"] >= 6:
                    restart = asyncio.ensure_future(asyncio.to_thread(own_server.restart, hard=hard))
            assert restart is not None
            await restart
            run = await ff.get(run_id)
            stored = [e async for e in ff.events(run_id, follow=False)]
        assert own_server.starts == starts + 1
        assert_resumed_after_restart(own_server, seen)
        assert_gapless(seen)
        assert seen == stored
        assert seen[-1]["type"] == "run.completed"
        assert run["status"] == "completed" and run["output"] == {"n": 40, "total": 780}

    arun(body(), timeout=60)


async def _follow_until_killed(server: Any, run_id: str, kill_when: Any) -> list[dict[str, Any]]:
    """Follow over a raw socket; SIGKILL the server once ``kill_when(frame)``; return what arrived."""
    frames: list[dict[str, Any]] = []
    killed = False
    with contextlib.suppress(ConnectionClosed, OSError):
        async with ws_open(server, run_id) as socket:
            async for message in socket:
                frames.append(json.loads(message))
                if not killed and kill_when(frames[-1]):
                    killed = True
                    await asyncio.to_thread(server.kill)
    assert killed, f"the run ended before the kill point: {[f['type'] for f in frames]}"
    assert frames[-1]["type"] not in TERMINAL, "the server finished the run before it died"
    return frames


async def _resume_after(server: Any, run_id: str, after: int) -> list[dict[str, Any]]:
    async with Client(server.url, server.token, reconnect_delay=0.05) as ff:
        return [event async for event in ff.events(run_id, after=after)]


def test_sigkill_during_a_durable_sleep(own_server):
    async def body():
        async with http(own_server) as client:
            run_id = await start(client, "sleepy")
        before = await _follow_until_killed(own_server, run_id, lambda f: f["type"] == "run.waiting")
        assert not own_server.alive
        await asyncio.to_thread(own_server.start, own_server.port)
        after = await _resume_after(own_server, run_id, before[-1]["seq"])
        async with http(own_server) as client:
            run = await wait_finished(client, run_id)
            stored = await stored_events(client, run_id)
        combined = before + after
        assert_gapless(combined)
        assert combined == stored
        assert run["status"] == "completed" and run["output"] == {"sum": 3}
        assert [e["type"] for e in combined].count("run.started") == 1
        assert_resumed_after_restart(own_server, combined)

    arun(body(), timeout=60)


def test_sigkill_in_the_middle_of_steps(own_server):
    async def body():
        async with http(own_server) as client:
            run_id = await start(client, "steps", {"n": 40, "delay": 0.03})
        before = await _follow_until_killed(own_server, run_id, lambda f: f["seq"] >= 15)
        # a new process on the same project dir (a different port is fine: nothing remembers it)
        await asyncio.to_thread(own_server.start, 0)
        after = await _resume_after(own_server, run_id, before[-1]["seq"])
        async with http(own_server) as client:
            run = await wait_finished(client, run_id)
            stored = await stored_events(client, run_id)
        combined = before + after
        assert_gapless(combined)
        assert combined == stored
        assert run["status"] == "completed" and run["output"] == {"n": 40, "total": 780}
        completed = [e["step"] for e in combined if e["type"] == "step.completed"]
        assert len(completed) == len(set(completed)) == 40, "a completed step ran again after the crash"
        assert_resumed_after_restart(own_server, combined)

    arun(body(), timeout=60)
