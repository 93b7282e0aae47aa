"""One run, three views: WebSocket, Server-Sent Events and the JSON form must agree exactly.

Tried: a live `steps` run streamed over WS and SSE at the same time (raw frame text compared, not just
parsed JSON); SSE ``id:``/``event:`` lines against each event's seq/type; resuming with
``Last-Event-ID`` and ``after=`` (the larger wins); ``follow=false`` on a waiting run; dropping a
WS / SSE connection after a few events and resuming from the last seq seen. All of it held: the
streams are gapless and never repeat an event.
"""

from __future__ import annotations

import asyncio
import json

from .helpers import (
    arun,
    assert_gapless,
    http,
    sse_frames,
    start,
    stored_events,
    wait_for_type,
    ws_collect,
    ws_open,
    ws_read_until,
)


def test_ws_sse_and_json_agree(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 8, "delay": 0.03})
            raw_ws: list[str] = []
            ws_events, sse = await asyncio.gather(ws_collect(server, run_id, raw=raw_ws), sse_frames(server, run_id))
            stored = await stored_events(client, run_id)
            run = (await client.get(f"/runs/{run_id}")).json()
        assert ws_events[-1]["type"] == "run.completed"
        assert ws_events[-1]["output"] == {"n": 8, "total": 28}
        assert_gapless(ws_events)
        assert len(ws_events) == 2 + 2 * 8
        assert {e["run_id"] for e in ws_events} == {run_id}
        # SSE: id == seq, event == type, data is byte-for-byte the WebSocket frame
        assert [f["data"] for f in sse] == raw_ws
        assert [int(f["id"]) for f in sse] == [e["seq"] for e in ws_events]
        assert [f["event"] for f in sse] == [e["type"] for e in ws_events]
        assert stored == ws_events
        assert run["last_seq"] == ws_events[-1]["seq"] and run["status"] == "completed"

    arun(body())


def test_sse_resume_with_last_event_id_and_after(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 4})
            full = await ws_collect(server, run_id)
            by_header = await sse_frames(server, run_id, last_event_id="3")
            by_query = await sse_frames(server, run_id, after=5)
            larger_wins = await sse_frames(server, run_id, after=2, last_event_id="6")
            # a Last-Event-ID that is not a seq is a 400 like a bad ?after= (test_hostile.py)
            json_after = await stored_events(client, run_id, after=7)
        texts = {e["seq"]: json.dumps(e, separators=(",", ":")) for e in full}
        assert [int(f["id"]) for f in by_header] == list(range(4, len(full) + 1))
        assert [json.loads(f["data"]) for f in by_header] == full[3:]
        assert [int(f["id"]) for f in by_query] == list(range(6, len(full) + 1))
        assert [int(f["id"]) for f in larger_wins] == list(range(7, len(full) + 1))
        assert all(f["data"] == texts[int(f["id"])] for f in by_header)
        assert json_after == full[7:]

    arun(body())


def test_follow_false_stops_at_stored_events_of_a_waiting_run(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            frames = await asyncio.wait_for(sse_frames(server, run_id, follow=False), 5)
            stored = await stored_events(client, run_id)
            await client.post(f"/runs/{run_id}/cancel")
        assert [json.loads(f["data"]) for f in frames] == stored
        assert stored[-1]["type"] == "run.waiting"

    arun(body())


def test_ws_dropped_midstream_resumes_with_after(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 20, "delay": 0.03})
            async with ws_open(server, run_id) as socket:
                first = await ws_read_until(socket, lambda f: f["seq"] >= 5)
            # the client hung up; the run goes on without it
            rest = await ws_collect(server, run_id, after=first[-1]["seq"])
            stored = await stored_events(client, run_id)
        combined = first + rest
        assert_gapless(combined)
        assert combined == stored
        assert combined[-1]["type"] == "run.completed"

    arun(body())


def test_sse_dropped_midstream_resumes_with_last_event_id(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 20, "delay": 0.03})
            first = await sse_frames(server, run_id, stop_after=5)
            rest = await sse_frames(server, run_id, last_event_id=first[-1]["id"])
            stored = await stored_events(client, run_id)
        combined = [json.loads(f["data"]) for f in first + rest]
        assert_gapless(combined)
        assert combined == stored
        assert combined[-1]["type"] == "run.completed"

    arun(body())
