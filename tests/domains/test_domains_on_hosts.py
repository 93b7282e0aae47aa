"""The domain example on both hosts: ``flareflow serve --local`` and the project built by ``flareflow build``
served on real workerd + Pyodide (`tests.api.hosts`; a missing harness skips locally and fails under CI).

One run of ``domain-order`` goes through a plain call, a call with its own retry policy and ``ctx`` (its
first attempt fails; the retry is a durable timer), two parallel calls, a wait during which the run's
object is evicted, and a pipeline. Both hosts must name the steps by path, send the same hashes (computed
here on CPython, there on Pyodide), log through ``ctx.log`` into the step's logs, and replay after the
eviction without running a step again. A pipeline whose object is evicted in the middle of its chain
starts its one step again and completes it once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flareflow.engine.domains import call_hash
from tests.api.helpers import http, start, stored_events, wait_finished, wait_until
from tests.api.hosts import HOSTS, make_server

PYPROJECT = """\
[project]
name = "flareflow-domains"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""

FLOWS = '''\
"""The domain example of the README (issue 14), with a retried method, parallel calls and a pipeline."""

from typing import Any

from flareflow import Domain, Method, Retry, Run, StepContext, workflow


async def check(product: dict[str, Any]) -> dict[str, Any]:
    return {"sku": product["sku"], "in_stock": True}


async def reserve(product: dict[str, Any], *, quantity: int, ctx: StepContext) -> dict[str, Any]:
    if ctx.attempt == 1:
        raise RuntimeError("the warehouse is busy")
    ctx.log.warning("held %d of %s on attempt %d", quantity, product["sku"], ctx.attempt)
    return {"sku": product["sku"], "held": quantity, "attempt": ctx.attempt}


Inventory = Domain("Inventory", check=check,
                   reserve=Method(reserve, retry=Retry(limit=3, delay="1s"), timeout="30s"))


def validate(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "valid": True}


def enrich(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "customer": "ACME"}


def process(order: dict[str, Any], fee: int = 0) -> dict[str, Any]:
    return {"customer": order["customer"], "valid": order["valid"], "total": order["quantity"] * 10 + fee}


Order = Domain("Order", validate=validate, enrich=enrich, process=process)


async def slow_enrich(order: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    await asyncio.sleep(order["pause"])  # the test evicts the run's object in here
    return {**order, "customer": "ACME"}


Slow = Domain("Slow", validate=validate, enrich=slow_enrich, process=process)


@workflow("domain-evicted-chain")
async def domain_evicted_chain(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    return await run.Slow(order).validate().enrich().process()


@workflow("domain-order")
async def domain_order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    stock = await run.Inventory(order["product"]).check()
    held = await run.Inventory(order["product"]).reserve(quantity=order["quantity"])
    a, b = await run.parallel(run.Inventory({"sku": "A"}).check(), run.domain("Inventory")({"sku": "B"}).check())
    go = await run.wait_for_event("go")
    bill = await run.Order(order).validate().enrich().process(fee=go["fee"])
    return {"stock": stock, "held": held, "parallel": [a["sku"], b["sku"]], "bill": bill}
'''

ORDER = {"product": {"sku": "ABC"}, "quantity": 2}
NO_ARGS = [{"args": [], "kwargs": {}}]


def write_project(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "workflows" / "domain_flows.py").write_text(FLOWS, encoding="utf-8")
    return root


@pytest.fixture(scope="module", params=sorted(HOSTS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = make_server(str(request.param), tmp_path_factory.mktemp(f"domains-{request.param}"), write_project)
    yield srv
    srv.stop()


def test_the_domain_example_runs_with_hashed_steps(server: Any) -> None:
    async def body() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with http(server) as client:
            run_id = await start(client, "domain-order", ORDER)

            async def waits_for_go() -> bool:  # past the reserve retry's timer, at the event wait
                return any(e["type"] == "run.waiting" and e["reason"] == "event"
                           for e in await stored_events(client, run_id))

            await wait_until(waits_for_go, 20, "the wait for 'go'")
        await asyncio.to_thread(server.evict, run_id)
        async with http(server) as client:
            sent = await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": {"fee": 5}})
            assert sent.status_code in (200, 201, 202), sent.text
            run = await wait_finished(client, run_id, timeout=30)
            return run, await stored_events(client, run_id)

    run, events = asyncio.run(body())
    assert run["status"] == "completed", (run, events[-5:])
    assert run["output"] == {"stock": {"sku": "ABC", "in_stock": True},
                             "held": {"sku": "ABC", "held": 2, "attempt": 2},
                             "parallel": ["A", "B"],
                             "bill": {"customer": "ACME", "valid": True, "total": 25}}
    done = [e for e in events if e["type"] == "step.completed"]
    expected = {
        "Inventory.check": {call_hash("Inventory.check", {"sku": s}, NO_ARGS) for s in ("ABC", "A", "B")},
        "Inventory.reserve": {call_hash("Inventory.reserve", {"sku": "ABC"},
                                        [{"args": [], "kwargs": {"quantity": 2}}])},
        "Order.validate.enrich.process": {call_hash("Order.validate.enrich.process", {**ORDER},
                                                    [*NO_ARGS, *NO_ARGS, {"args": [], "kwargs": {"fee": 5}}])},
    }
    assert sorted(e["name"] for e in done) == sorted(["Inventory.check"] * 3 + ["Inventory.reserve",
                                                      "Order.validate.enrich.process"])
    for event in done:
        assert event["hash"] in expected[event["name"]], event
        assert event["step"] == f"{event['name']}@{event['hash']}#1"
    retrying = [e for e in events if e["type"] == "step.retrying"]
    assert [(e["name"], e["attempt"], e["error"]["message"]) for e in retrying] == [
        ("Inventory.reserve", 1, "the warehouse is busy")]
    reserve = next(e for e in done if e["name"] == "Inventory.reserve")
    assert [(e["stream"], e["level"], e["text"]) for e in reserve["logs"]] == [
        ("log", "WARNING", "held 2 of ABC on attempt 2")]
    started = Counter(e["name"] for e in events if e["type"] == "step.started")
    assert started == {"Inventory.check": 3, "Inventory.reserve": 2, "Order.validate.enrich.process": 1}, \
        "a step ran again after the eviction"


def test_a_pipeline_interrupted_by_an_eviction_runs_again_whole(server: Any) -> None:
    """Evicting the run's object (workerd: ``ctx.abort()``; local: SIGKILL + restart) in the middle of a
    chain: the chain's one step is started again and completes once, with every method's work in it."""
    async def body() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with http(server) as client:
            run_id = await start(client, "domain-evicted-chain", {"quantity": 3, "pause": 3.0})

            async def chain_started() -> bool:
                return any(e["type"] == "step.started" for e in await stored_events(client, run_id))

            await wait_until(chain_started, 20, "the chain to start")
        await asyncio.to_thread(server.evict, run_id)
        async with http(server) as client:
            run = await wait_finished(client, run_id, timeout=40)
            return run, await stored_events(client, run_id)

    run, events = asyncio.run(body())
    assert run["status"] == "completed", (run, events[-5:])
    assert run["output"] == {"customer": "ACME", "valid": True, "total": 30}
    steps = [(e["type"], e["name"], e["attempt"]) for e in events if e["type"].startswith("step.")]
    assert steps == [("step.started", "Slow.validate.enrich.process", 1),
                     ("step.started", "Slow.validate.enrich.process", 2),
                     ("step.completed", "Slow.validate.enrich.process", 2)], steps
