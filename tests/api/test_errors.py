"""Everything a client can get wrong ends as a 4xx with ``{"error": {"code", "message", "field"}}``.

Tried: no token, a wrong token, a token with the wrong scheme, on HTTP and on the WebSocket upgrade
(``?token=`` accepted for browsers); the public /health and /openapi.json; bodies over the limit
(declared by Content-Length, and chunked without one); malformed, non-object, non-UTF-8 and deeply
nested JSON; missing / unknown / wrongly typed fields; unknown run (well- and badly-formed ids),
workflow and route; wrong method; bad query parameters; a plain GET on the WebSocket route;
malformed WebSocket frames (not JSON, not an object, unknown type, missing fields, deeply nested),
each closing only its own socket with 1008 while a sibling socket on the same run keeps streaming;
a WebSocket frame over the body limit.

Found and fixed along the way (server-side, see the report): a body nested ~1000 deep crashed the
router with RecursionError (500, plain-text body); a plain HTTP GET on /runs/{id}/ws was served as
an endless SSE stream instead of the documented 400; WebSocket frames had no size limit (now the
body limit, closing with 1009).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .helpers import TERMINAL, arun, http, start, stored_events, wait_for_type, ws_open, ws_read_until
from .project import MAX_BODY

UNKNOWN_RUN = "0123456789abcdef0123f"


def _error(response: httpx.Response, status: int, code: str | None = None, field: str | None = "?") -> dict:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field != "?":
        assert error["field"] == field, error
    return error


def test_auth_on_http(server):
    async def body():
        async with http(server, auth=False) as client:
            health = await client.get("/health")
            spec = await client.get("/openapi.json")
            none = await client.get("/workflows")
            wrong = await client.get("/workflows", headers={"authorization": "Bearer nope"})
            basic = await client.get("/workflows", headers={"authorization": f"Basic {server.token}"})
            prefix = await client.get("/workflows", headers={"authorization": f"Bearer {server.token[:-1]}"})
            post = await client.post("/runs", json={"workflow": "steps"})
            run = await client.get(f"/runs/{UNKNOWN_RUN}")
            listed = await client.get("/runs")
            ok = await client.get("/workflows", headers=server.headers)
            lower = await client.get("/workflows", headers={"authorization": f"bearer {server.token}"})
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert spec.status_code == 200
        for response in (none, wrong, basic, prefix, post, run, listed):
            _error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].lower().startswith("bearer")
        assert ok.status_code == 200
        assert {w["name"] for w in ok.json()["workflows"]} >= {"steps", "approval", "sleepy", "chatty"}
        assert lower.status_code == 200

    arun(body())


def test_auth_on_websocket_upgrade(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 1})
            rejected = []
            for headers in ({}, {"authorization": "Bearer wrong"}):
                with pytest.raises(InvalidStatus) as info:
                    async with ws_open(server, run_id, auth=False) if not headers else \
                            _ws_with(server, run_id, headers):
                        pass
                rejected.append(info.value.response)
            with pytest.raises(InvalidStatus) as info:
                async with ws_open(server, run_id, auth=False, token="wrong"):
                    pass
            rejected.append(info.value.response)
            # browsers cannot set headers on a WebSocket: ?token= is accepted
            async with ws_open(server, run_id, auth=False, token=server.token) as socket:
                frames = await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
        for response in rejected:
            assert response.status_code == 401
            assert json.loads(response.body)["error"]["code"] == "unauthorized"
        assert frames[-1]["type"] == "run.completed"

    arun(body())


def _ws_with(server, run_id, headers):
    from websockets.asyncio.client import connect

    return connect(f"{server.ws_base}/runs/{run_id}/ws", additional_headers=headers, open_timeout=10)


def test_websocket_upgrade_for_unknown_run_and_bad_after(server):
    async def main():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 1})
        with pytest.raises(InvalidStatus) as unknown:
            async with ws_open(server, UNKNOWN_RUN):
                pass
        with pytest.raises(InvalidStatus) as negative:
            async with ws_open(server, run_id, after=-1):
                pass  # pragma: no cover
        assert unknown.value.response.status_code == 404
        assert json.loads(unknown.value.response.body)["error"]["code"] == "run_not_found"
        assert negative.value.response.status_code == 400
        assert json.loads(negative.value.response.body)["error"]["field"] == "after"

    arun(main())


def test_body_limits(server):
    async def body():
        async with http(server) as client:
            big = {"workflow": "steps", "input": "x" * (MAX_BODY + 10)}
            declared = await client.post("/runs", json=big)

            async def chunks():
                for _ in range(8):
                    yield b" " * 1024  # whitespace: valid JSON padding, but too much of it
                yield b'{"workflow": "steps"}'

            chunked = await client.post("/runs", content=chunks(), headers={"content-type": "application/json"})
            lying = await client.post("/runs", content=b"{}", headers={"content-length": "2"})
            at_limit = await client.post("/runs", content=json.dumps({"workflow": "steps"}).ljust(MAX_BODY).encode())
            event = await client.post(f"/runs/{UNKNOWN_RUN}/events", json={"type": "x", "payload": "y" * MAX_BODY})
        _error(declared, 413, "payload_too_large", "body")
        _error(chunked, 413, "payload_too_large", "body")
        _error(event, 413, "payload_too_large", "body")
        _error(lying, 400, "missing_field", "workflow")
        assert at_limit.status_code == 201, at_limit.text

    arun(body())


def test_malformed_bodies(server):
    async def body():
        async with http(server) as client:
            cases = {
                "broken": await client.post("/runs", content=b'{"workflow": '),
                "not utf-8": await client.post("/runs", content=b'{"workflow": "\xff\xfe"}'),
                "array": await client.post("/runs", content=b'["steps"]'),
                "string": await client.post("/runs", content=b'"steps"'),
                "deep": await client.post("/runs", content=b'{"workflow":"steps","input":' + b"[" * 1500
                                          + b"]" * 1500 + b"}"),
                "deep-but-parses": await client.post("/runs", content=b'{"workflow":"steps","input":'
                                                     + b"[" * 600 + b"]" * 600 + b"}"),
                "deep event": await client.post(f"/runs/{UNKNOWN_RUN}/events",
                                                content=b'{"type":"x","payload":' + b'{"a":' * 500 + b"1"
                                                + b"}" * 500 + b"}"),
            }
            nested_ok = await client.post("/runs", content=b'{"workflow":"steps","input":' + b"[" * 100
                                          + b"]" * 100 + b"}")
            missing = await client.post("/runs", json={"input": 1})
            empty = await client.post("/runs", content=b"")
            typed = await client.post("/runs", json={"workflow": 5})
            blank = await client.post("/runs", json={"workflow": " "})
            unknown_field = await client.post("/runs", json={"workflow": "steps", "inptu": 1})
            nan = await client.post("/runs", content=b'{"workflow": "steps", "input": NaN}')
            unknown_wf = await client.post("/runs", json={"workflow": "no-such-flow"})
            bad_reason = await client.post(f"/runs/{UNKNOWN_RUN}/cancel", json={"reason": 5})
        for name, response in cases.items():
            error = _error(response, 400, field="body")
            assert error["code"] in ("invalid_json", "invalid_body"), (name, error)
        assert nested_ok.status_code == 201, nested_ok.text  # reasonable nesting is still fine
        for response in (missing, empty):
            _error(response, 400, "missing_field", "workflow")
        for response in (typed, blank):
            _error(response, 400, "invalid_field", "workflow")
        _error(unknown_field, 400, "unknown_field", "inptu")
        _error(nan, 400, "invalid_input")
        _error(unknown_wf, 404, "workflow_not_found", "workflow")
        # the run id is checked by the handler only after the body: either error is a 4xx, never a 5xx
        assert bad_reason.status_code in (400, 404)

    arun(body())


def test_not_found_and_method_not_allowed(server):
    async def body():
        async with http(server) as client:
            unknown_run = await client.get(f"/runs/{UNKNOWN_RUN}")
            bad_id = await client.get("/runs/NOT-AN-ID")
            traversal = await client.get("/runs/..%2f..%2fetc")
            events = await client.get(f"/runs/{UNKNOWN_RUN}/events")
            json_events = await client.get(f"/runs/{UNKNOWN_RUN}/events", headers={"accept": "application/json"})
            post_event = await client.post(f"/runs/{UNKNOWN_RUN}/events", json={"type": "go"})
            answer = await client.post(f"/runs/{UNKNOWN_RUN}/input", json={"value": 1})
            cancel = await client.post(f"/runs/{UNKNOWN_RUN}/cancel")
            route = await client.get("/nope")
            deep_route = await client.get(f"/runs/{UNKNOWN_RUN}/steps/1")
            method = await client.delete("/runs")
            put = await client.put(f"/runs/{UNKNOWN_RUN}", json={})
            unauth_route = await client.get("/nope", headers={"authorization": "Bearer wrong"})
        for response in (unknown_run, bad_id, events, json_events, post_event, answer, cancel):
            _error(response, 404, "run_not_found", "run_id")
        assert traversal.status_code == 404
        _error(route, 404, "not_found")
        _error(deep_route, 404, "not_found")
        for response in (method, put):
            _error(response, 405, "method_not_allowed")
        _error(unauth_route, 401, "unauthorized")

    arun(body())


def test_query_parameter_errors(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 1})
            after = await client.get(f"/runs/{run_id}/events", params={"after": "x"})
            negative = await client.get(f"/runs/{run_id}/events", params={"after": "-1"})
            follow = await client.get(f"/runs/{run_id}/events", params={"follow": "maybe"})
            limit = await client.get(f"/runs/{run_id}/events", params={"limit": "0"},
                                     headers={"accept": "application/json"})
        _error(after, 400, "invalid_parameter", "after")
        _error(negative, 400, "invalid_parameter", "after")
        _error(follow, 400, "invalid_parameter", "follow")
        _error(limit, 400, "invalid_parameter", "limit")

    arun(body())


def test_plain_get_on_websocket_route_is_400_not_a_stream(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")  # never finishes on its own: a stream would hang
            await wait_for_type(client, run_id, "run.waiting")
            response = await asyncio.wait_for(client.get(f"/runs/{run_id}/ws"), 5)
            await client.post(f"/runs/{run_id}/cancel")
        _error(response, 400)

    arun(body())


@pytest.mark.parametrize("frame", [
    "this is not json",
    "[1, 2, 3]",
    '{"type": "telepathy"}',
    '{"type": "input"}',
    '{"type": "input", "value": true, "step": 5}',
    '{"type": "event"}',
    '{"type": "event", "event_type": "   "}',
    '{"type": "input", "value": ' + "[" * 1500 + "]" * 1500 + "}",
])
def test_malformed_frame_closes_only_that_socket(server, frame):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            async with ws_open(server, run_id) as bad, ws_open(server, run_id) as good:
                first_bad = await ws_read_until(bad, lambda f: f["type"] == "run.waiting")
                first_good = await ws_read_until(good, lambda f: f["type"] == "run.waiting")
                assert first_bad == first_good
                await bad.send(frame)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(bad.recv(), 5)
                assert bad.close_code == 1008
                assert bad.close_reason, "a 1008 close must say why"
                # the sibling socket on the same run is untouched and keeps receiving
                response = await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": 1})
                assert response.status_code == 202
                more = await ws_read_until(good, lambda f: f["type"] == "input.requested")
                await good.send(json.dumps({"type": "input", "value": True}))
                more += await ws_read_until(good, lambda f: f["type"] in TERMINAL)
        assert more[0]["type"] == "event.received"
        assert more[-1]["type"] == "run.completed"

    arun(body())


def test_oversized_frame_closes_with_1009(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            async with ws_open(server, run_id) as socket:
                await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
                await socket.send(json.dumps({"type": "event", "event_type": "go", "payload": "x" * MAX_BODY}))
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(socket.recv(), 5)
                assert socket.close_code == 1009
            types = [e["type"] for e in await stored_events(client, run_id)]
            await client.post(f"/runs/{run_id}/cancel")
        assert "event.received" not in types, "the oversized event must not have been delivered"

    arun(body())
