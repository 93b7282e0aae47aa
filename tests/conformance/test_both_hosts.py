"""Host conformance: what the Cloudflare shells must do on real workerd, proved the same way on the local server.

Every test is parametrised by host (``local`` = ``flareflow serve --local``; ``workerd`` = the project built
by ``flareflow build`` and served by the harness on real workerd + Pyodide); the assertions are the same
on both unless a test says why a host differs (and then each host's documented behaviour is asserted):

* a durable sleep is resumed by the alarm -- also after the run's object was evicted mid-sleep while a
  client keeps polling it;
* evicting the run's object (workerd: ``ctx.abort()``; local: SIGKILL + restart, the nearest the local
  server has) again and again while a multi-step run progresses loses nothing: same output, gapless
  events, every step completed exactly once;
* a WebSocket client that reconnects with ``after=`` to a woken object gets a gapless stream, and a
  `flareflow.client.Client` follower spanning the eviction sees every event exactly once;
* 10 concurrent runs;
* a cron firing starts the workflow whose ``schedule`` is that cron, once however often the firing is
  delivered, with ``trigger: "cron"`` on ``run.started`` (workerd: the Worker's ``scheduled()`` through
  the harness; local: ``GET /cdn-cgi/handler/scheduled``, the URL ``wrangler dev`` fires crons with);
* ``Prefer: respond-async``: 202 + id + ``queued`` on workerd (the dispatch queue starts it), 201 on the
  local server (documented: it starts at once); the run completes either way;
* ``GET /runs`` paged with ``cursor`` (D1 on workerd) across a dozen objects: no duplicates, none missing;
* JSON over the payload threshold (10 KiB) round-trips identically (input, step result, event payload,
  output, ~50 KiB each) over GET, JSON events, SSE and WebSocket;
* the recovery commands over the API: ``retry`` of a failed run (its completed steps not run again, the
  failed one given a fresh attempt), ``restart`` from a step (a new run reusing the results before it,
  the original unchanged), ``DELETE`` (storage, index row and offloaded payloads gone -- R2 on workerd;
  unfinished runs refused until cancelled) and ``prune`` (unfinished statuses refused, a dry run lists,
  the real one deletes);
* a failing step's error names the user's file, line and function (``step.failed``, ``run.failed`` and
  ``GET /runs/{id}``), a non-retryable type fails it at its first attempt, and what each step printed
  and logged comes as its events' ``logs`` and its stored ``logs`` -- two parallel steps' not mixed.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from flareflow.client import Client
from flareflow.engine.cron import cron_start_key
from tests.api.helpers import (
    TERMINAL,
    arun,
    assert_gapless,
    event_time,
    sse_frames,
    stored_events,
    wait_finished,
    wait_for_type,
    wait_until,
    ws_collect,
    ws_open,
    ws_read_until,
)

from .project import line_of

NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)  # the local "eviction" restarts the process
ROUTINE = re.compile(r"\[mf:info\] (GET|POST) \S+ [1-4]\d\d |\"(GET|POST) \S+ HTTP/1.1\" [1-4]\d\d")


def http(server: Any) -> httpx.AsyncClient:
    """A client that opens a connection per request, so a restarted server never meets a stale one."""
    return httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=15.0, limits=NO_KEEPALIVE)


async def start(client: httpx.AsyncClient, workflow: str, input: Any = None) -> str:
    response = await client.post("/runs", json={"workflow": workflow, "input": input})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def evict(server: Any, run_id: str) -> None:
    await asyncio.to_thread(server.evict, run_id)


def where(server: Any, events: list[dict[str, Any]]) -> str:
    """Context for a failure: the last events and what the server printed (minus request logs)."""
    tail = [(e["seq"], e["type"], e.get("step")) for e in events[-8:]]
    lines = [line for line in server.output().splitlines() if not ROUTINE.search(line)]
    return f"last events {tail}\n--- {server.kind} output (tail, no request lines):\n" + "\n".join(lines[-40:])


async def finished(server: Any, client: httpx.AsyncClient, run_id: str, timeout: float) -> dict[str, Any]:
    try:
        return await wait_finished(client, run_id, timeout)
    except AssertionError:
        raise AssertionError(f"run {run_id} did not finish within {timeout}s; "
                             + where(server, await stored_events(client, run_id))) from None


def completed_steps(events: list[dict[str, Any]]) -> list[str]:
    return [e["step"] for e in events if e["type"] == "step.completed"]


# -- sleeps and alarms ------------------------------------------------------------------------------


@pytest.mark.parametrize("evicted", [False, True], ids=["warm", "evicted-and-polled"])
def test_sleep_is_resumed_by_the_alarm(server, evicted):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "nap")
            await wait_for_type(client, run_id, "run.waiting")
            waiting = [e for e in await stored_events(client, run_id) if e["type"] == "run.waiting"]
            assert waiting[-1]["reason"] == "sleep", waiting
            if evicted:
                await evict(server, run_id)
        async with http(server) as client:
            # wait_finished polls every 20 ms: the (woken) object is touched all through the nap
            run = await finished(server, client, run_id, timeout=12)
            events = await stored_events(client, run_id)
        assert run["status"] == "completed" and run["output"] == {"sum": 3}
        assert_gapless(events)
        assert completed_steps(events) == ["before#1", "after#1"]
        slept = event_time(next(e for e in events if e["type"] == "step.completed" and e["step"] == "after#1"))
        began = event_time(waiting[-1])
        assert slept - began >= 1.9, "the nap ended early"
        assert slept - began < 8, f"the alarm woke the run {slept - began:.1f}s into a 2 s nap"

    arun(body(), timeout=60)


# -- eviction ---------------------------------------------------------------------------------------


def test_eviction_between_steps_loses_nothing(server):
    n, delay, spacing = 30, 0.1, 4

    async def body():
        async with http(server) as client:
            run_id = await start(client, "many", {"n": n, "delay": delay})
            evictions = 0
            for round_ in range(1, 5):
                async def progressed(target: int = round_ * spacing) -> bool:
                    events = await stored_events(client, run_id)
                    return len(completed_steps(events)) >= target or events[-1]["type"] in TERMINAL

                try:
                    await wait_until(progressed, 10, f"{round_ * spacing} completed steps")
                except AssertionError:
                    raise AssertionError(f"the run stopped progressing after {evictions} eviction(s); "
                                         + where(server, await stored_events(client, run_id))) from None
                if (await client.get(f"/runs/{run_id}")).json()["status"] in ("completed", "failed"):
                    break
                await evict(server, run_id)
                evictions += 1
        async with http(server) as client:
            run = await finished(server, client, run_id, timeout=30)
            events = await stored_events(client, run_id)
        streamed = await ws_collect(server, run_id)  # the woken object streams the whole history
        assert evictions >= 3, f"the run finished after {evictions} evictions: not a mid-run test"
        assert run["status"] == "completed", where(server, events)
        assert run["output"] == {"n": n, "total": n * (n - 1) // 2}
        assert_gapless(events)
        assert streamed == events
        assert completed_steps(events) == [f"s{i}#1" for i in range(n)], "a step was lost or completed twice"
        types = [e["type"] for e in events]
        assert types.count("run.started") == 1 and types.count("run.completed") == 1
        assert {s["step"]: s["status"] for s in run["steps"]} == {f"s{i}#1": "completed" for i in range(n)}

    arun(body(), timeout=120)


def test_websocket_reconnects_with_after_to_a_woken_object(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "gated", {"n": 5, "delay": 0.05})
            await wait_for_type(client, run_id, "run.waiting")
        followed: list[dict[str, Any]] = []

        async def follow() -> None:  # a client that keeps following across the eviction (reconnecting)
            async with Client(server.url, server.token, reconnect_delay=0.1, max_reconnects=100) as ff:
                async for event in ff.events(run_id):
                    followed.append(event)

        follower = asyncio.ensure_future(follow())
        async with ws_open(server, run_id) as socket:
            first = await ws_read_until(socket, lambda f: f["type"] == "run.waiting")
        await wait_until(lambda: _true(len(followed) >= len(first)), 10, "the follower to catch up")
        await evict(server, run_id)
        # a new socket from the last seq seen wakes the object; the event goes through that socket
        async with ws_open(server, run_id, after=first[-1]["seq"]) as socket:
            await socket.send(json.dumps({"type": "event", "event_type": "go", "payload": {"woke": True}}))
            rest = await ws_read_until(socket, lambda f: f["type"] in TERMINAL)
            try:
                extra: Any = await asyncio.wait_for(socket.recv(), 10)
            except ConnectionClosed:
                extra = None
            except TimeoutError:
                extra = "still open 10 s after the terminal event"
            close = (socket.close_code, extra)
        await asyncio.wait_for(follower, 20)
        async with http(server) as client:
            events = await stored_events(client, run_id)
            run = (await client.get(f"/runs/{run_id}")).json()
        assert [f["type"] for f in rest if f["type"] == "error"] == [], rest
        combined = first + rest
        assert_gapless(combined)
        assert combined == events
        assert followed == events, "the reconnecting follower missed or repeated an event"
        assert run["output"] == {"event": {"woke": True}, "n": 5}
        assert close == (1000, None), f"the server must close the socket (1000) after the terminal event: {close}"

    arun(body(), timeout=90)


async def _true(value: bool) -> bool:
    return value


# -- concurrency and listing ------------------------------------------------------------------------


def test_ten_concurrent_runs(server):
    async def body():
        async with http(server) as client:
            inputs = [{"n": 4 + i % 3, "delay": 0.02} for i in range(10)]
            responses = await asyncio.gather(*(client.post("/runs", json={"workflow": "many", "input": inp})
                                               for inp in inputs))
            assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
            ids = [r.json()["id"] for r in responses]
            assert len(set(ids)) == 10
            runs = await asyncio.gather(*(finished(server, client, run_id, 30) for run_id in ids))
            histories = await asyncio.gather(*(stored_events(client, run_id) for run_id in ids))
        for inp, run, events in zip(inputs, runs, histories, strict=True):
            n = inp["n"]
            assert run["status"] == "completed" and run["output"] == {"n": n, "total": n * (n - 1) // 2}
            assert_gapless(events)
            assert {e["run_id"] for e in events} == {run["id"]}
            assert completed_steps(events) == [f"s{i}#1" for i in range(n)]

    arun(body(), timeout=90)


def test_list_runs_pages_across_objects(server):
    async def body():
        async with http(server) as client:
            ids: list[str] = []
            for batch in range(3):  # a few at once too: equal timestamps must still page cleanly
                posts = [client.post("/runs", json={"workflow": "tiny", "input": batch * 4 + i}) for i in range(4)]
                responses = await asyncio.gather(*posts)
                assert [r.status_code for r in responses] == [201] * 4
                ids += [r.json()["id"] for r in responses]
            pages: list[list[dict[str, Any]]] = []
            cursor = None
            for _ in range(10):
                params: dict[str, Any] = {"workflow": "tiny", "limit": 5}
                if cursor:
                    params["cursor"] = cursor
                response = await client.get("/runs", params=params)
                assert response.status_code == 200, response.text
                pages.append(response.json()["runs"])
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
        listed = [r["id"] for page in pages for r in page]
        assert [len(p) for p in pages] == [5, 5, 2], [len(p) for p in pages]
        assert len(listed) == len(set(listed)), "a run appeared on two pages"
        assert set(listed) == set(ids), f"missing {set(ids) - set(listed)}, extra {set(listed) - set(ids)}"
        created = [r["created_at"] for page in pages for r in page]
        assert created == sorted(created, reverse=True), "runs are not newest first"
        assert all(r["workflow"] == "tiny" for page in pages for r in page)

    arun(body(), timeout=60)


def test_listing_says_what_a_waiting_run_waits_for_and_finds_it_by_id_prefix(server):
    """``waiting_for`` comes from the index row (no object woken per row); ``id_prefix`` filters it."""

    async def body():
        async with http(server) as client:
            run_id = await start(client, "gated")
            await wait_for_type(client, run_id, "run.waiting")

            found: dict[str, Any] = {}

            async def row() -> bool:
                response = await client.get("/runs", params={"id_prefix": run_id[:10], "status": "waiting"})
                assert response.status_code == 200, response.text
                found.update(next(iter(response.json()["runs"]), {}))
                return bool(found.get("waiting_for"))

            await wait_until(row, timeout=15, what="the waiting row")
            assert found["id"] == run_id
            assert [{k: w[k] for k in ("kind", "event_type")} for w in found["waiting_for"]] == \
                [{"kind": "event", "event_type": "go"}]
            prefixed = (await client.get("/runs", params={"id_prefix": run_id[:12].upper()})).json()["runs"]
            assert [r["id"] for r in prefixed] == [run_id]
            bad = await client.get("/runs", params={"id_prefix": "xyz"})
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "id_prefix"
            await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": {}})
            done = await finished(server, client, run_id, 30)
            assert done["status"] == "completed"
            after = (await client.get("/runs", params={"id_prefix": run_id})).json()["runs"]
            assert after[0]["waiting_for"] is None

    arun(body(), timeout=60)


# -- cron and queued starts ---------------------------------------------------------------------------


def test_cron_firing_starts_the_scheduled_workflow(server, host):
    # workerd: the harness runs the Worker's scheduled(); local: GET /cdn-cgi/handler/scheduled (wrangler's URL).
    # The local server also fires `nightly` by itself at every real */10 minute, so runs are told apart by
    # their key: one per workflow and *scheduled* minute, the same rule on both hosts.
    when = datetime(2031, 3, 4, 5, 10, tzinfo=UTC)
    key = cron_start_key("nightly", when.timestamp())
    elsewhen = datetime(2031, 3, 4, 0, 0, tzinfo=UTC)  # matches "0 0 * * *" and "*/10 * * * *" alike
    ours = (key, cron_start_key("nightly", elsewhen.timestamp()))

    async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        response = await client.get("/runs", params={"workflow": "nightly", "limit": 500})
        assert response.status_code == 200, response.text
        return [r for r in response.json()["runs"] if r["idempotency_key"] in ours]

    async def body():
        async with http(server) as client:
            assert await listed(client) == []
            # no workflow has this cron: nothing starts, though `nightly`'s schedule matches that minute
            other = await asyncio.to_thread(server.scheduled, "0 0 * * *", elsewhen)
            assert other["outcome"] == "ok", other
            result = await asyncio.to_thread(server.scheduled, "*/10 * * * *", when)
            assert result["outcome"] == "ok", result

            async def appeared() -> bool:
                return bool(await listed(client))

            try:
                await wait_until(appeared, 15, "a run of the scheduled workflow in GET /runs")
            except AssertionError:
                raise AssertionError("no run after scheduled():\n" + server.output()[-3000:]) from None
            runs = await listed(client)
            run = await finished(server, client, runs[0]["id"], 15)
            events = await stored_events(client, run["id"])
            # the same firing delivered twice (cron triggers are at-least-once) starts nothing new
            again = await asyncio.to_thread(server.scheduled, "*/10 * * * *", when)
            assert again["outcome"] == "ok", again
            await asyncio.sleep(1.0)
            runs_after = await listed(client)
        assert len(runs) == 1, runs
        assert run["workflow"] == "nightly" and run["status"] == "completed"
        assert run["output"] == {"ticked": True}
        assert run["idempotency_key"] == key
        assert events[0]["type"] == "run.started" and events[0]["trigger"] == "cron", events[0]
        assert [r["id"] for r in runs_after] == [run["id"]], "a repeated (or the other) firing started a run"

    arun(body(), timeout=60)


def test_queued_start(server, host):
    key = "queued-" + secrets.token_hex(6)

    async def body():
        async with http(server) as client:
            response = await client.post("/runs", json={"workflow": "many", "input": {"n": 3}},
                                         headers={"prefer": "respond-async"})
            keyed = await client.post("/runs", json={"workflow": "many", "input": {"n": 2}, "idempotency_key": key},
                                      headers={"prefer": "respond-async"})
            body_ = response.json()
            run_id = body_["id"]
            assert response.headers["location"] == f"/runs/{run_id}"
            if host == "workerd":
                # documented: on a host with a dispatch queue the start is queued and answered at once
                assert response.status_code == 202, response.text
                assert body_ == {"id": run_id, "workflow": "many", "status": "queued"}
                assert keyed.status_code == 202, keyed.text
            else:
                # documented: the local server starts it right away
                assert response.status_code == 201, response.text
                assert body_["status"] in ("running", "completed") and body_["input"] == {"n": 3}
                assert keyed.status_code == 201, keyed.text

            async def exists() -> bool:
                return (await client.get(f"/runs/{run_id}")).status_code == 200

            await wait_until(exists, 15, f"queued run {run_id} to exist")
            run = await finished(server, client, run_id, 15)
            events = await stored_events(client, run_id)
            # the queued keyed start and a later synchronous one with the same key meet one run
            await wait_until(lambda: _exists(client, keyed.json()["id"]), 15, "the keyed queued run")
            repeat = await client.post("/runs", json={"workflow": "many", "input": {"n": 2}, "idempotency_key": key})
            # the same key with another input is a conflict, not silently the first run
            other = await client.post("/runs", json={"workflow": "many", "input": {"n": 5}, "idempotency_key": key})
            keyed_run = await finished(server, client, keyed.json()["id"], 15)
        assert run["status"] == "completed" and run["output"] == {"n": 3, "total": 3}
        assert run["input"] == {"n": 3}
        assert_gapless(events)
        assert repeat.status_code == 200, repeat.text
        assert repeat.json()["id"] == keyed.json()["id"]
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict", other.text
        assert keyed_run["output"] == {"n": 2, "total": 1} and keyed_run["idempotency_key"] == key

    arun(body(), timeout=60)


async def _exists(client: httpx.AsyncClient, run_id: str) -> bool:
    return (await client.get(f"/runs/{run_id}")).status_code == 200


# -- large payloads ------------------------------------------------------------------------------------


def _text(size: int, seed: int) -> str:
    """~``size`` characters of mixed ASCII and multi-byte text (so bytes and characters differ)."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ,.-\"\\/\n\téü日本語🙂"
    return "".join(rng.choice(alphabet) for _ in range(size))


BIG_INPUT = {"text": _text(50_000, 1), "items": list(range(2_000))}
BIG_EVENT = {"text": _text(50_000, 2), "nested": {"deep": [_text(100, 3)] * 5}}


SHOUTED = {"upper": BIG_INPUT["text"].upper(), "items": list(reversed(BIG_INPUT["items"]))}
BIG_OUTPUT = {"text_len": len(BIG_INPUT["text"]), "shouted_len": len(SHOUTED["upper"]), "event": BIG_EVENT,
              "reversed": BIG_EVENT["text"][::-1]}
_BIG_RUNS: dict[int, dict[str, Any]] = {}


def big_run(server: Any) -> dict[str, Any]:
    """One `big` run per server, driven to completion, with every view of it (shared by two tests)."""
    if id(server) in _BIG_RUNS:
        return _BIG_RUNS[id(server)]

    async def body() -> dict[str, Any]:
        async with http(server) as client:
            run_id = await start(client, "big", BIG_INPUT)
            await wait_for_type(client, run_id, "run.waiting")
            sent = await client.post(f"/runs/{run_id}/events", json={"type": "payload", "payload": BIG_EVENT})
            assert sent.status_code == 202, sent.text
            run = await finished(server, client, run_id, 20)
            again = (await client.get(f"/runs/{run_id}")).json()  # finished: possibly from the KV cache
            events = await stored_events(client, run_id)
        sse = await sse_frames(server, run_id)
        streamed = await ws_collect(server, run_id)
        return {"id": run_id, "run": run, "again": again, "events": events, "sse": sse, "ws": streamed}

    _BIG_RUNS[id(server)] = arun(body(), timeout=90)
    return _BIG_RUNS[id(server)]


def test_large_payloads_round_trip(server):
    big = big_run(server)
    events = big["events"]
    assert big["run"]["status"] == "completed", where(server, events)
    for view in (big["run"], big["again"]):
        assert view["input"] == BIG_INPUT
        assert view["output"] == BIG_OUTPUT
        assert [s["result"] for s in view["steps"] if s["step"] == "shout#1"] == [SHOUTED]
    by_type = {e["type"]: e for e in events}
    assert by_type["run.started"]["input"] == BIG_INPUT
    assert by_type["step.completed"]["result"] == SHOUTED
    assert by_type["event.received"]["payload"] == BIG_EVENT
    assert by_type["run.completed"]["output"] == BIG_OUTPUT
    assert_gapless(events)
    assert big["ws"] == events
    assert [json.loads(f["data"]) for f in big["sse"]] == events


def test_large_payloads_are_offloaded(server, host):
    """Past the API: the payloads really left SQL for the blob store (R2 on workerd, files locally)."""
    big = big_run(server)
    if host == "workerd":  # through Miniflare's R2 API, from outside the Worker
        harness = server.harness
        assert harness is not None
        keys = [o["key"] for o in harness.r2_objects(prefix=f"runs/{big['id']}/")]
        stored = [json.loads(harness.r2_text(key) or "null") for key in keys]
        for value, what in ((BIG_INPUT, "input"), (SHOUTED, "step result"), (BIG_EVENT, "event payload"),
                            (BIG_OUTPUT, "output")):
            assert value in stored, f"the {what} is not in the R2 bucket PAYLOADS"
        return
    folder = server.project / ".flareflow" / "state" / "blobs" / "runs" / big["id"]
    blobs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.iterdir())]
    for value, what in ((BIG_INPUT, "input"), (SHOUTED, "step result"), (BIG_EVENT, "event payload"),
                        (BIG_OUTPUT, "output")):
        assert value in blobs, f"the {what} is not in the blob store"


# -- tracebacks and step logs ------------------------------------------------------------------------


def test_tracebacks_and_step_logs(server):
    async def body():
        async with http(server) as client:
            run_id = await start(client, "faulty", 7)
            run = await finished(server, client, run_id, timeout=20)
            events = await stored_events(client, run_id)
        return run, events

    run, events = arun(body(), timeout=60)
    assert run["status"] == "failed", where(server, events)
    fail_frame = {"file": "workflows/conformance_flows.py", "line": line_of("FAIL-LINE"), "function": "decline"}
    (failed,) = [e for e in events if e["type"] == "step.failed"]
    assert failed["attempt"] == 1 and not [e for e in events if e["type"] == "step.retrying"]
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "order 7 declined"
    assert failed["error"]["traceback"] == [fail_frame], failed["error"]
    assert [(e["stream"], e["text"]) for e in failed["logs"]] == [
        ("stdout", "charging order 7"), ("log", "card for order 7 declined")]
    assert failed["logs"][1]["level"] == "WARNING" and failed["logs"][1]["logger"] == "conformance"
    run_error = next(e for e in events if e["type"] == "run.failed")["error"]
    assert run_error == run["error"]
    assert run_error["traceback"] == [
        {"file": "workflows/conformance_flows.py", "line": line_of("CHARGE-LINE"), "function": "faulty"}]
    assert run_error["cause"]["traceback"] == [fail_frame]
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["charge"]["error"]["traceback"] == [fail_frame]
    assert [(e["attempt"], e["text"]) for e in steps["charge"]["logs"]] == [
        (1, "charging order 7"), (1, "card for order 7 declined")]
    completed = {e["name"]: e for e in events if e["type"] == "step.completed"}
    for word in ("left", "right"):
        expected = [f"{word} {i}" for i in range(3)]
        assert [e["text"] for e in completed[word]["logs"]] == expected, completed[word]
        assert [e["text"] for e in steps[word]["logs"]] == expected


# -- recovery commands ---------------------------------------------------------------------------------


def _started(events: list[dict[str, Any]]) -> dict[str, int]:
    """How often each step was started (its function called) in these events."""
    counts: dict[str, int] = {}
    for event in events:
        if event["type"] == "step.started":
            counts[event["name"]] = counts.get(event["name"], 0) + 1
    return counts


async def _failed_fragile(server: Any, client: httpx.AsyncClient, seconds: float) -> tuple[str, float]:
    """A ``fragile`` run that failed at ``charge`` and ``until``, the time after which it would succeed.
    Only time reaches both hosts' step code; when the host was too slow to fail within the window (the
    run completed), it is tried again with a wider one."""
    import time

    for window in (seconds, seconds * 3, seconds * 9):  # a loaded host may reach `charge` past `until`
        until = time.time() + window
        run_id = await start(client, "fragile", {"until": until})
        run = await finished(server, client, run_id, timeout=20 + window)
        if run["status"] != "completed" or time.time() < until:
            break
    assert run["status"] == "failed", where(server, await stored_events(client, run_id))
    return run_id, until


async def _past(until: float) -> None:
    import time

    await asyncio.sleep(max(0.0, until - time.time()) + 0.3)


def _payload_keys(server: Any, run_id: str) -> list[str]:
    """The run's offloaded payloads, read past the API (R2 through Miniflare; the local blob folder)."""
    if server.kind == "workerd":
        return [o["key"] for o in server.harness.r2_objects(prefix=f"runs/{run_id}/")]
    folder = server.project / ".flareflow" / "state" / "blobs" / "runs" / run_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_retry_restart_delete_and_prune(server):
    async def body() -> None:
        async with http(server) as client:
            # retry: the failed step gets a fresh attempt; completed steps are not run again
            run_id, until = await _failed_fragile(server, client, 4.0)  # ample: the run must fail first
            early = await client.post(f"/runs/{run_id}/retry", json={"extra": 1})
            assert early.status_code == 400 and early.json()["error"]["field"] == "extra", early.text
            await _past(until)
            retried = await client.post(f"/runs/{run_id}/retry", json={})
            assert retried.status_code == 200, retried.text
            assert retried.json()["status"] in ("running", "completed"), retried.text
            run = await finished(server, client, run_id, timeout=20)
            events = await stored_events(client, run_id)
            assert run["status"] == "completed" and run["error"] is None, where(server, events)
            assert run["output"] == {"done": ["first", "second", "charged"], "size": 12_000}
            assert _started(events) == {"first": 1, "second": 1, "charge": 2, "last": 1}
            types = [e["type"] for e in events]
            assert types.index("run.failed") < types.index("run.retried") < types.index("run.completed")
            assert next(e for e in events if e["type"] == "run.retried")["steps"] == ["charge#1"]
            assert_gapless(events)
            streamed = await sse_frames(server, run_id)  # it goes on past the first run.failed
            assert [json.loads(f["data"]) for f in streamed] == events
            async with Client(server.url, server.token) as ff:  # so does a client following it
                assert [e async for e in ff.events(run_id)] == events
                assert [e async for e in ff.events(run_id, transport="sse")] == events
            again = await client.post(f"/runs/{run_id}/retry")
            assert again.status_code == 409 and again.json()["error"]["code"] == "run_state_conflict"

            # restart from a step: a new run; what came before is reused, the original stays as it was
            origin, until = await _failed_fragile(server, client, 3.0)
            before = (await client.get(f"/runs/{origin}")).json()
            await _past(until)
            unknown = await client.post(f"/runs/{origin}/restart", json={"from_step": "nope"})
            assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "from_step", unknown.text
            restarted = await client.post(f"/runs/{origin}/restart", json={"from_step": "second"})
            assert restarted.status_code == 201, restarted.text
            new_id = restarted.json()["id"]
            assert new_id != origin and restarted.headers["location"] == f"/runs/{new_id}"
            new = await finished(server, client, new_id, timeout=20)
            new_events = await stored_events(client, new_id)
            assert new["status"] == "completed", where(server, new_events)
            assert new["restarted_from"] == {"run_id": origin, "step": "second#1"}
            assert new_events[0]["restarted_from"] == {"run_id": origin, "step": "second#1"}
            assert new_events[0]["reused"] == ["first#1"]
            assert _started(new_events) == {"second": 1, "charge": 1, "last": 1}
            assert new["output"] == {"done": ["first", "second", "charged"], "size": 12_000}
            assert (await client.get(f"/runs/{origin}")).json() == before
            whole = await client.post(f"/runs/{origin}/restart")
            assert whole.status_code == 201, whole.text
            rerun = await finished(server, client, whole.json()["id"], timeout=20)
            assert rerun["restarted_from"] == {"run_id": origin, "step": None} and rerun["status"] == "completed"

            # delete: a finished run goes with its index row and payloads; an unfinished one is refused
            assert _payload_keys(server, new_id), "the 12 KiB step result is offloaded"
            deleted = await client.delete(f"/runs/{new_id}")
            assert deleted.status_code == 200 and deleted.json() == {"deleted": True, "id": new_id}, deleted.text
            assert (await client.get(f"/runs/{new_id}")).status_code == 404
            listed = await client.get("/runs", params={"id_prefix": new_id})
            assert listed.json()["runs"] == [], listed.text
            assert _payload_keys(server, new_id) == []
            assert (await client.delete(f"/runs/{new_id}")).status_code == 404
            waiting = await start(client, "gated")
            refused = await client.delete(f"/runs/{waiting}")
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "run_state_conflict"
            assert (await client.get(f"/runs/{waiting}")).status_code == 200
            assert (await client.post(f"/runs/{waiting}/cancel", json={})).status_code == 200

            # prune: unfinished statuses refused; a dry run lists; the real one deletes
            bad = await client.post("/runs/prune", json={"older_than": "0s", "status": "waiting"})
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "status", bad.text
            young = await client.post("/runs/prune", json={"older_than": "3650d", "status": "cancelled"})
            assert young.status_code == 200 and young.json()["runs"] == [], young.text
            await asyncio.sleep(0.1)
            dry = await client.post("/runs/prune", json={"older_than": "0s", "status": "cancelled", "dry_run": True})
            assert dry.status_code == 200 and waiting in dry.json()["runs"], dry.text
            assert (await client.get(f"/runs/{waiting}")).status_code == 200
            pruned = await client.post("/runs/prune", json={"older_than": "0s", "status": ["cancelled"]})
            assert pruned.status_code == 200 and waiting in pruned.json()["runs"], pruned.text
            assert (await client.get(f"/runs/{waiting}")).status_code == 404
            assert (await client.get("/runs", params={"id_prefix": waiting})).json()["runs"] == []

    arun(body(), timeout=150)
