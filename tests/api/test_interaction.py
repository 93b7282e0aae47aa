"""Talking to a run: events, answers, cancel, pause/resume, over HTTP and over the WebSocket.

Tried: the `approval` workflow driven entirely over one socket (event frame, a wrong-typed answer, then
a good one) and entirely over HTTP; answers that violate the question's schema, answers with no open
question and to an unknown step; cancel twice and deliveries after cancel; pause / resume of a live
`steps` run. Survived: schema violations are 400 with ``error.field == "value"`` (an error frame on
the socket, which stays open and keeps streaming); finished runs answer 409 to everything.

Found and fixed: WebSocket error frames used Python class names as codes ("InvalidInput") where HTTP
says "invalid_input"; both now come from one mapping (`router.api_error`).
"""

from __future__ import annotations

import asyncio
import json

from .helpers import (
    TERMINAL,
    arun,
    assert_gapless,
    http,
    server_closed,
    start,
    stored_events,
    wait_finished,
    wait_for_type,
    ws_open,
    ws_read_until,
)


def test_event_and_answer_over_the_socket(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            async with ws_open(server, run_id) as socket:
                frames = await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
                await socket.send(json.dumps({"type": "event", "event_type": "go", "payload": {"by": "ws"}}))
                frames += await ws_read_until(socket, lambda f: f["type"] == "input.requested")
                question = frames[-1]
                frames += await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
                assert frames[-1]["step"] == question["step"]
                assert question["schema"] == {"type": "boolean"}
                await socket.send(json.dumps({"type": "input", "value": "yes please"}))
                error = json.loads(await asyncio.wait_for(socket.recv(), 5))
                assert error["type"] == "error"
                assert error["error"]["field"] == "value"
                assert error["error"]["code"] == "invalid_input"  # the code POST /input answers with
                assert "boolean" in error["error"]["message"] or "answer" in error["error"]["message"]
                # the socket stayed open: a good answer goes through it and the run finishes
                await socket.send(json.dumps({"type": "input", "value": True, "step": question["step"]}))
                frames += await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
            stored = await stored_events(client, run_id)
        assert frames == stored
        assert_gapless(frames)
        types = [f["type"] for f in frames]
        assert "event.received" in types and "input.received" in types
        assert frames[-1]["type"] == "run.completed"
        assert frames[-1]["output"] == {"event": {"by": "ws"}, "ok": True}

    arun(body())


def test_event_and_answer_over_http(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            early = await client.post(f"/runs/{run_id}/input", json={"value": True})
            assert early.status_code == 400 and early.json()["error"]["field"] == "value"  # nothing asked yet
            sent = await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": [1, 2]})
            assert sent.status_code == 202, sent.text
            assert sent.json() == {"delivered": True, "run_id": run_id, "type": "go"}
            await wait_for_type(client, run_id, "input.requested")
            run = (await client.get(f"/runs/{run_id}")).json()
            assert run["status"] == "waiting" and run["waiting"], run
            bad = await client.post(f"/runs/{run_id}/input", json={"value": 42})
            assert bad.status_code == 400, bad.text
            assert bad.json()["error"]["field"] == "value"
            assert bad.json()["error"]["code"] == "invalid_input"
            missing = await client.post(f"/runs/{run_id}/input", json={"answer": True})
            assert missing.status_code == 400 and missing.json()["error"]["field"] == "value"
            wrong_step = await client.post(f"/runs/{run_id}/input", json={"value": True, "step": "nope#9"})
            assert wrong_step.status_code == 400 and wrong_step.json()["error"]["field"] == "step"
            bad_step = await client.post(f"/runs/{run_id}/input", json={"value": True, "step": 7})
            assert bad_step.status_code == 400 and bad_step.json()["error"]["field"] == "step"
            no_type = await client.post(f"/runs/{run_id}/events", json={"payload": 1})
            assert no_type.status_code == 400 and no_type.json()["error"]["field"] == "type"
            good = await client.post(f"/runs/{run_id}/input", json={"value": False})
            assert good.status_code == 202, good.text
            assert good.json()["step"].startswith("proceed")
            run = await wait_finished(client, run_id)
            again = await client.post(f"/runs/{run_id}/input", json={"value": True})
        assert run["status"] == "completed"
        assert run["output"] == {"event": [1, 2], "ok": False}
        assert again.status_code == 409 and again.json()["error"]["code"] == "run_finished"

    arun(body())


def test_cancel(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            async with ws_open(server, run_id) as socket:
                cancelled = await client.post(f"/runs/{run_id}/cancel", json={"reason": "test says stop"})
                frames = await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert frames[-1]["type"] == "run.cancelled"
            assert frames[-1]["reason"] == "test says stop"
            second = await client.post(f"/runs/{run_id}/cancel")
            event = await client.post(f"/runs/{run_id}/events", json={"type": "go"})
            answer = await client.post(f"/runs/{run_id}/input", json={"value": True})
            pause = await client.post(f"/runs/{run_id}/pause")
            # a socket opened on a finished run gets the history and closes; a frame sent meanwhile
            # gets an error frame, never a crash
            async with ws_open(server, run_id) as socket:
                history = await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
            status = (await client.get(f"/runs/{run_id}")).json()["status"]
            stored = await stored_events(client, run_id)
        for response in (second, event, answer, pause):
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "run_finished"
        assert status == "cancelled"
        assert history == stored and stored[-1]["type"] == "run.cancelled"
        assert [e["type"] for e in stored].count("run.cancelled") == 1

    arun(body())


def test_event_over_socket_after_cancel_is_an_error_frame(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            async with ws_open(server, run_id) as socket:
                await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
                await client.post(f"/runs/{run_id}/cancel")
                await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
                # the server closes the socket after the terminal event (1000 "run finished")
                code, reason = await server_closed(socket, 5)
                assert code == 1000 and reason, (code, reason)
            # a fresh socket on a waiting run: a delivery error comes back as a frame, socket stays up
            other = await start(client, "approval")
            await wait_for_type(client, other, "run.waiting")
            async with ws_open(server, other) as socket:
                await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
                await socket.send(json.dumps({"type": "input", "value": True}))  # nothing asked yet
                error = json.loads(await asyncio.wait_for(socket.recv(), 5))
                assert error == {"type": "error", "error": {"code": "invalid_input", "field": "value",
                                                            "message": error["error"]["message"]}}
                await socket.send(json.dumps({"type": "event", "event_type": "go"}))
                received = await ws_read_until(socket, lambda f: f["type"] == "input.requested")
                assert received[0]["type"] == "event.received"
            await client.post(f"/runs/{other}/cancel")

    arun(body())


def test_pause_and_resume(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 30, "delay": 0.02})
            await wait_for_type(client, run_id, "step.completed")
            paused = await client.post(f"/runs/{run_id}/pause", json={"reason": "hold on"})
            assert paused.status_code == 200, paused.text
            assert paused.json()["status"] == "paused"
            again = await client.post(f"/runs/{run_id}/pause")
            assert again.status_code == 200 and again.json()["status"] == "paused"
            # the running step may finish; after that nothing new starts
            await asyncio.sleep(0.3)
            held = (await client.get(f"/runs/{run_id}")).json()
            await asyncio.sleep(0.3)
            still = (await client.get(f"/runs/{run_id}")).json()
            assert held["status"] == still["status"] == "paused"
            assert still["last_seq"] == held["last_seq"], "a paused run kept emitting events"
            resumed = await client.post(f"/runs/{run_id}/resume")
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["status"] != "paused"
            run = await wait_finished(client, run_id)
            stored = await stored_events(client, run_id)
            after = await client.post(f"/runs/{run_id}/resume")
        assert run["status"] == "completed" and run["output"] == {"n": 30, "total": 435}
        types = [e["type"] for e in stored]
        assert types.count("run.paused") == 1 and types.count("run.resumed") == 1
        assert types.index("run.paused") < types.index("run.resumed")
        assert next(e for e in stored if e["type"] == "run.paused")["reason"] == "hold on"
        assert_gapless(stored)
        assert after.status_code == 409

    arun(body())


def test_list_runs_filters_and_pages(server):
    async def body():
        async with http(server) as client:
            ids = [await start(client, "steps", {"n": 1}) for _ in range(3)]
            for run_id in ids:
                await wait_finished(client, run_id)
            seen: list[str] = []
            created: list[str] = []
            cursor = None
            for _ in range(50):
                params = {"workflow": "steps", "status": "completed", "limit": 2}
                if cursor:
                    params["cursor"] = cursor
                page = await client.get("/runs", params=params)
                assert page.status_code == 200, page.text
                body_ = page.json()
                assert all(r["workflow"] == "steps" and r["status"] == "completed" for r in body_["runs"])
                seen += [r["id"] for r in body_["runs"]]
                created += [r["created_at"] for r in body_["runs"]]
                cursor = body_["next_cursor"]
                if cursor is None:
                    break
            bad = await client.get("/runs", params={"status": "sleeping"})
            bad_limit = await client.get("/runs", params={"limit": "0"})
            bad_cursor = await client.get("/runs", params={"cursor": "../etc"})
        assert set(ids) <= set(seen)
        assert len(seen) == len(set(seen)), "a run appeared on two pages"
        assert created == sorted(created, reverse=True), "runs are not newest first"
        if server.kind == "local":
            # local ids are time-ordered; the Worker derives a keyed run's id from its key (so retries meet
            # one Durable Object), so only created_at orders runs there
            assert seen == sorted(seen, reverse=True), "runs are not in id order"
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
        assert bad_limit.status_code == 400 and bad_limit.json()["error"]["field"] == "limit"
        assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["field"] == "cursor"

    arun(body())


