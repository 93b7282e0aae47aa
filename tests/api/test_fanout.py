"""Fan-out: 100 WebSocket clients on one run all receive the identical, ordered, gapless sequence.

Tried: a gated `chatty` run (150 instant steps, 304 events) held at ``wait_for_event("go")`` until all
100 sockets have their backlog, so almost everything they get is live fan-out rather than replay;
then 100 sockets joining a running `steps` run one by one, each with a random ``after=`` (some ahead
of what has been stored yet). Survived: every socket's frames are byte-identical to the stored
history (from its ``after`` on), and the server closes each socket with 1000 after ``run.completed``.
"""

from __future__ import annotations

import asyncio
import json
import random

from .helpers import TERMINAL, arun, assert_gapless, http, server_closed, start, stored_events, ws_open

CLIENTS = 100
STEPS = 150


async def _socket(server, run_id: str, after: int = 0, ready: asyncio.Event | None = None) -> list[str]:
    raw: list[str] = []
    async with ws_open(server, run_id, after) as socket:
        async for message in socket:
            raw.append(str(message))
            frame = json.loads(message)
            if ready is not None and frame["type"] == "run.waiting":
                ready.set()
            if frame["type"] in TERMINAL:
                break
        code, _ = await server_closed(socket, 10)
        assert code == 1000, code
    return raw


def test_hundred_sockets_on_one_run(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "chatty", {"n": STEPS, "gate": True})
            readies = [asyncio.Event() for _ in range(CLIENTS)]
            tasks = [asyncio.ensure_future(_socket(server, run_id, 0, ready)) for ready in readies]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 20)
            held = len(await stored_events(client, run_id))
            response = await client.post(f"/runs/{run_id}/events", json={"type": "go"})
            assert response.status_code == 202
            results = await asyncio.wait_for(asyncio.gather(*tasks), 40)
            stored = await stored_events(client, run_id)
        texts = [json.dumps(e, separators=(",", ":")) for e in stored]
        assert len(stored) == held + 1 + 2 * STEPS + 1  # event.received, the steps, run.completed
        assert_gapless(stored)
        assert stored[-1]["type"] == "run.completed"
        for raw in results:
            assert raw == texts

    arun(body(), timeout=60)


def test_hundred_sockets_joining_mid_stream(server):
    async def body():
        rng = random.Random(7)
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 60, "delay": 0.02})
            first = asyncio.ensure_future(_socket(server, run_id))
            afters = [rng.randrange(0, 120) for _ in range(CLIENTS)]
            tasks = []
            running_at_half = False
            for i, after in enumerate(afters):
                tasks.append(asyncio.ensure_future(_socket(server, run_id, after)))
                await asyncio.sleep(0.004)  # spread the connects over the run's ~1.2 s
                if i == CLIENTS // 2:
                    running_at_half = (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
            results = await asyncio.wait_for(asyncio.gather(first, *tasks), 40)
            stored = await stored_events(client, run_id)
        assert running_at_half, "the run finished before half the sockets connected: not a mid-stream test"
        texts = [json.dumps(e, separators=(",", ":")) for e in stored]
        assert results[0] == texts
        for after, raw in zip(afters, results[1:], strict=True):
            assert raw == texts[after:], f"socket with after={after} saw a different sequence"

    arun(body(), timeout=60)
