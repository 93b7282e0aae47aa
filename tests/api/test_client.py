"""`flareflow.client.Client` against the real server: every method, and its error type.

Tried: health / workflows / start (with and without a key) / get / list / events (WS, SSE and the
non-following JSON form) / send_event / answer / pause / resume / cancel / wait, and the `ApiError`
raised for 4xx answers (status, code, field), including on the WebSocket upgrade.

Found and fixed: ``events(follow=False)`` made one JSON request and so silently stopped at the
server's page size (1000 events); it now pages with ``after=`` until a page comes back empty.
"""

from __future__ import annotations

import pytest

from flareflow.client import ApiError, Client

from .helpers import arun, assert_gapless


def test_client_round_trip(server):
    async def body():
        async with Client(server.url, server.token) as ff:
            assert (await ff.health())["status"] == "ok"
            names = {w["name"] for w in await ff.workflows()}
            assert {"steps", "approval", "sleepy", "chatty"} <= names
            run = await ff.start("approval", {"who": "client"}, idempotency_key=f"client-{server.token[-8:]}")
            again = await ff.start("approval", {"who": "client"}, idempotency_key=f"client-{server.token[-8:]}")
            assert again["id"] == run["id"]
            await ff.send_event(run["id"], "go", {"n": 1})
            async for event in ff.events(run["id"], transport="sse"):
                if event["type"] == "input.requested":
                    break
            paused = await ff.pause(run["id"], "a moment")
            assert paused["status"] == "paused"
            assert (await ff.resume(run["id"]))["status"] != "paused"
            step = await ff.answer(run["id"], True)
            assert step.startswith("proceed")
            final = await ff.wait(run["id"])
            assert final["status"] == "completed" and final["output"] == {"event": {"n": 1}, "ok": True}
            page = await ff.list(workflow="approval", status="completed", limit=100)
            assert run["id"] in [r["id"] for r in page["runs"]]
            with pytest.raises(ApiError) as finished:
                await ff.cancel(run["id"])
            assert finished.value.status == 409 and finished.value.code == "run_finished"
            with pytest.raises(ApiError) as missing:
                await ff.start("no-such-workflow")
            assert (missing.value.status, missing.value.field) == (404, "workflow")
            with pytest.raises(ApiError) as unknown:
                async for _ in ff.events("0123456789abcdef0123f"):
                    pass
            assert unknown.value.status == 404
            other = await ff.start("approval")
            cancelled = await ff.cancel(other["id"], "no longer needed")
            assert cancelled["status"] == "cancelled"
        async with Client(server.url, "wrong-token") as bad:
            with pytest.raises(ApiError) as unauthorized:
                await bad.workflows()
            assert unauthorized.value.status == 401
            with pytest.raises(ApiError) as ws_unauthorized:
                async for _ in bad.events(run["id"], transport="ws"):
                    pass
            assert ws_unauthorized.value.status == 401

    arun(body())


def test_events_without_follow_pages_past_the_server_page_size(server):
    async def body():
        async with Client(server.url, server.token) as ff:
            run = await ff.start("chatty", {"n": 520})  # 2 + 2 * 520 = 1042 events: more than one page
            final = await ff.wait(run["id"])
            stored = [e async for e in ff.events(run["id"], follow=False)]
            tail = [e async for e in ff.events(run["id"], follow=False, after=1000)]
            live = [e async for e in ff.events(run["id"], transport="ws")]
        assert final["last_seq"] == 1042
        assert_gapless(stored)
        assert len(stored) == 1042 and stored == live
        assert tail == stored[1000:]

    arun(body(), timeout=60)
