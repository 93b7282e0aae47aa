"""Idempotent starts: one key, one run, whether the key comes in the body or the header.

Tried: the body key and the ``Idempotency-Key`` header (201 then 200, same id, ``location`` header);
a repeat with different input (409, the first run untouched); 40 concurrent POSTs sharing one key, on separate
connections; keys that are blank or too long. Survived: exactly one 201 and one run per key.

Found and fixed: a repeated key answered 201 (not 200) whenever the run was still cached in the
server (a sticky `RunCoordinator.created` flag; now `LocalRuntime.start_or_get` says whether the call
created the run); a header key longer
than 256 characters was silently truncated, so two different keys could share one run (router.py
now rejects it with 400 naming ``Idempotency-Key``, like the body key).
"""

from __future__ import annotations

import asyncio
import secrets

import httpx

from .helpers import arun, http, wait_finished


def test_key_in_body(server):
    async def body():
        key = "body-" + secrets.token_hex(8)
        async with http(server) as client:
            first = await client.post("/runs", json={"workflow": "steps", "input": {"n": 1}, "idempotency_key": key})
            second = await client.post("/runs", json={"workflow": "steps", "input": {"n": 1}, "idempotency_key": key})
            # the same key with another input is a 409 (test_hostile.py), never a second run
            other = await client.post("/runs", json={"workflow": "steps", "input": {"n": 5}, "idempotency_key": key})
            run = await wait_finished(client, first.json()["id"])
        assert first.status_code == 201, first.text
        assert second.status_code == 200, second.text
        assert first.json()["id"] == second.json()["id"]
        assert first.headers["location"] == f"/runs/{first.json()['id']}"
        assert second.json()["idempotency_key"] == key
        assert other.status_code == 409, other.text
        assert run["output"] == {"n": 1, "total": 0}, "a repeat must not replace the first input"

    arun(body())


def test_key_in_header(server):
    async def body():
        key = "header-" + secrets.token_hex(8)
        async with http(server) as client:
            first = await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": key})
            second = await client.post("/runs", json={"workflow": "steps"}, headers={"Idempotency-Key": key})
            # the same key in the body finds the run the header created
            third = await client.post("/runs", json={"workflow": "steps", "idempotency_key": key})
            other = await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": key + "x"})
        assert (first.status_code, second.status_code, third.status_code) == (201, 200, 200)
        assert first.json()["id"] == second.json()["id"] == third.json()["id"]
        assert first.json()["idempotency_key"] == key
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]

    arun(body())


def test_concurrent_duplicates_make_one_run(server):
    async def body():
        key = "race-" + secrets.token_hex(8)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        async with http(server, limits=limits) as client:
            async def post(i: int) -> httpx.Response:
                if i % 2:
                    return await client.post("/runs", json={"workflow": "steps", "idempotency_key": key})
                return await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": key})

            responses = await asyncio.gather(*(post(i) for i in range(40)))
            listed = (await client.get("/runs", params={"workflow": "steps", "limit": 500})).json()["runs"]
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 39 + [201], statuses
        assert len({r.json()["id"] for r in responses}) == 1
        assert [r["id"] for r in listed if r.get("idempotency_key") == key] == [responses[0].json()["id"]]

    arun(body())


def test_bad_keys(server):
    async def body():
        async with http(server) as client:
            blank = await client.post("/runs", json={"workflow": "steps", "idempotency_key": "  "})
            long = await client.post("/runs", json={"workflow": "steps", "idempotency_key": "k" * 257})
            typed = await client.post("/runs", json={"workflow": "steps", "idempotency_key": 7})
            blank_header = await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": ""})
            long_header = await client.post("/runs", json={"workflow": "steps"},
                                            headers={"idempotency-key": "k" * 257})
        for response in (blank, long, typed):
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == "idempotency_key"
        for response in (blank_header, long_header):
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == "Idempotency-Key"

    arun(body())


def test_long_header_keys_are_not_truncated_into_one(server):
    async def body():
        prefix = secrets.token_hex(8) + "k" * 240  # 256 characters
        async with http(server) as client:
            exact = await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": prefix})
            longer = await client.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": prefix + "x"})
        assert exact.status_code == 201, exact.text
        # it used to be cut to 256 characters, silently returning the run of a different key
        assert longer.status_code == 400, longer.text

    arun(body())
