"""Pipelines, the step context, per-method retry and timeout, and parallel domain calls (local runtime)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flareflow import Domain, Method, NonRetryableError, Retry, Run, workflow
from flareflow.engine.domains import StepContext, chain_policy
from flareflow.local import LocalRuntime
from tests.runtime.helpers import advance, finished, idle, of_type, turns, wait_until

CALLS: list[str] = []
FAIL: dict[str, int] = {}  # method -> how many more times it fails


def _maybe_fail(name: str) -> None:
    CALLS.append(name)
    if FAIL.get(name, 0) > 0:
        FAIL[name] -= 1
        raise RuntimeError(f"{name} is down")


def validate(order: dict[str, Any]) -> dict[str, Any]:
    _maybe_fail("validate")
    return {**order, "valid": True}


async def enrich(order: dict[str, Any], *, ctx: StepContext) -> dict[str, Any]:
    _maybe_fail("enrich")
    ctx.log.info("enriching %s (attempt %d)", order["id"], ctx.attempt)
    return {**order, "customer": "ACME", "attempt": ctx.attempt, "method": ctx.method, "path": ctx.path}


def process(order: dict[str, Any], fee: int = 0) -> dict[str, Any]:
    _maybe_fail("process")
    return {**order, "charged": 100 + fee}


async def slow(order: dict[str, Any]) -> dict[str, Any]:
    CALLS.append("slow")
    await asyncio.sleep(30)
    return order


Order = Domain("Order", validate=validate, enrich=Method(enrich, retry=Retry(limit=5, delay=0)),
               process=Method(process, retry=Retry(limit=2, delay="10s", non_retryable=(KeyError,))),
               slow=Method(slow, timeout="50ms", retry=Retry(limit=2, delay=0)))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    CALLS.clear()
    FAIL.clear()


def test_a_pipeline_is_one_step_and_each_method_gets_the_previous_result(runtime):
    @workflow("pipe", registry=runtime.registry)
    async def pipe(run: Run, order: dict[str, Any]) -> Any:
        return await run.Order(order).validate().enrich().process(5)

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("pipe", {"id": 7})).run_id)
        assert obj.status == "completed", obj.info
        assert obj.info["output"] == {"id": 7, "valid": True, "customer": "ACME", "attempt": 1, "method": "enrich",
                                      "path": "Order.validate.enrich.process", "charged": 105}
        done = of_type(obj, "step.completed")
        assert [e["name"] for e in done] == ["Order.validate.enrich.process"]
        assert done[0]["step"].startswith("Order.validate.enrich.process@") and len(done[0]["hash"]) == 16
        assert [entry["text"] for entry in done[0]["logs"]] == ["enriching 7 (attempt 1)"]
        assert CALLS == ["validate", "enrich", "process"]

    runtime.run(main)


def test_the_chain_retries_as_a_whole_under_its_strictest_policy(runtime):
    @workflow("pipe-retry", registry=runtime.registry)
    async def pipe_retry(run: Run, order: dict[str, Any]) -> Any:
        return await run.Order(order).validate().enrich().process()

    async def main(rt: LocalRuntime) -> None:
        FAIL["process"] = 1
        run_id = (await rt.start_run("pipe-retry", {"id": 1})).run_id
        await idle(rt)
        obj = rt.get(run_id)
        retrying = of_type(obj, "step.retrying")
        assert len(retrying) == 1 and retrying[0]["delay"] == 10  # process's policy: the fewest attempts
        await advance(rt, runtime.clock, 10)
        obj = await finished(rt, run_id)
        assert obj.status == "completed"
        assert obj.info["output"]["attempt"] == 2  # ctx.attempt counts the chain's attempts
        assert CALLS == ["validate", "enrich", "process"] * 2, "a retry re-ran part of the chain"
        # limit 2: a second failure is final
        CALLS.clear()
        FAIL["process"] = 2
        run_id = (await rt.start_run("pipe-retry", {"id": 2})).run_id
        await idle(rt)
        await advance(rt, runtime.clock, 10)
        obj = await finished(rt, run_id)
        assert obj.status == "failed"
        assert [e["attempt"] for e in of_type(obj, "step.failed")] == [2]

    runtime.run(main)


def test_chain_policy_rule():
    ours = [Order.methods[m] for m in ("validate", "enrich", "process")]
    policy = chain_policy(ours)
    assert (policy.limit, policy.delay, policy.non_retryable) == (2, 10.0, (KeyError,))
    assert chain_policy([Order.methods["validate"], Order.methods["enrich"]]).limit == 3  # the default policy
    tie = chain_policy([Method(validate, retry=Retry(limit=2, delay=1)),
                        Method(process, retry=Retry(limit=2, delay=9))])
    assert tie.delay == 1  # the earliest of equally strict methods


def test_per_method_retry_and_timeout(runtime):
    @workflow("methods", registry=runtime.registry)
    async def methods(run: Run, which: str) -> Any:
        if which == "enrich":
            return await run.Order({"id": 3}).enrich()
        if which == "slow":
            return await run.Order({"id": 4}).slow()
        return await run.Order({"id": 5}).validate().slow()

    async def main(rt: LocalRuntime) -> None:
        FAIL["enrich"] = 4  # limit 5, no delay: the fifth attempt succeeds
        obj = await finished(rt, (await rt.start_run("methods", "enrich")).run_id)
        assert obj.status == "completed" and obj.info["output"]["attempt"] == 5
        assert len(of_type(obj, "step.retrying")) == 4
        for which in ("slow", "chain"):
            CALLS.clear()
            run_id = (await rt.start_run("methods", which)).run_id
            for attempt in (1, 2):  # each attempt hangs until the (manual) clock passes slow's 50 ms
                await wait_until(lambda n=attempt: CALLS.count("slow") == n, f"attempt {attempt} of {which}")
                await turns()
                runtime.clock.advance(0.049)
                await turns()
                assert len(of_type(rt.get(run_id), "step.retrying")) == attempt - 1, "timed out early"
                runtime.clock.advance(0.001)
            obj = await finished(rt, run_id)
            assert obj.status == "failed"
            failed = of_type(obj, "step.failed")[0]
            assert failed["attempt"] == 2 and failed["error"]["type"] == "StepTimeout", failed  # slow's limit: 2
            expected = ("step 'Order.slow' attempt 2 timed out after 0.05s" if which == "slow"
                        else "Order.validate.slow: method 'slow' timed out after 0.05s")
            assert failed["error"]["message"] == expected
            assert (["slow"] * 2 if which == "slow" else ["validate", "slow"] * 2) == CALLS

    runtime.run(main)


def test_non_retryable_fails_a_chain_at_once(runtime):
    def refuse(card: dict[str, Any]) -> None:
        CALLS.append("charge")
        raise NonRetryableError("card declined")

    Domain("Card", check=lambda card: {**card, "checked": True}, charge=Method(refuse, retry=Retry(limit=9)))

    @workflow("card", registry=runtime.registry)
    async def card(run: Run) -> Any:
        return await run.Card({"id": 1}).check().charge()

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("card")).run_id)
        assert obj.status == "failed" and [e["attempt"] for e in of_type(obj, "step.failed")] == [1]
        assert obj.info["error"]["cause"]["message"] == "card declined"
        assert CALLS == ["charge"]

    runtime.run(main)


def test_parallel_domain_calls_keep_their_keys_whatever_finishes_first(runtime):
    def keys_of(obj: Any) -> dict[int, str]:
        return {e["result"]["id"]: e["step"] for e in of_type(obj, "step.completed")}

    async def delayed(order: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(order["delay"])
        CALLS.append(f"done {order['id']}")
        return {"id": order["id"]}

    Domain("Race", go=delayed)

    @workflow("race", registry=runtime.registry)
    async def race(run: Run, delays: list[float]) -> Any:
        results = await run.parallel(*(run.Race({"id": i, "delay": d}).go() for i, d in enumerate(delays)),
                                     run.Order({"id": 9}).validate().process())
        await run.wait_for_event("go")
        return [r["id"] for r in results]

    async def main(rt: LocalRuntime) -> None:
        first = (await rt.start_run("race", [0.05, 0.0, 0.02])).run_id
        second = (await rt.start_run("race", [0.0, 0.05, 0.01])).run_id
        await idle(rt)
        a, b = keys_of(rt.get(first)), keys_of(rt.get(second))
        order_a = [e["result"]["id"] for e in of_type(rt.get(first), "step.completed")]
        order_b = [e["result"]["id"] for e in of_type(rt.get(second), "step.completed")]
        assert order_a != order_b, "the branches finished in the same order: the test shows nothing"
        # keys depend on the call, never on completion order: same position -> same key prefix and suffix
        assert {i: k.rsplit("@", 1)[0] for i, k in a.items()} == {i: k.rsplit("@", 1)[0] for i, k in b.items()}
        assert all(k.endswith("#1") for k in a.values())
        rt2 = await runtime.restart()
        await rt2.recover()
        CALLS.clear()
        for run_id in (first, second):
            await rt2.send_event(run_id, "go")
            obj = await finished(rt2, run_id)
            assert obj.info["output"] == [0, 1, 2, 9]
        assert CALLS == [], "a replayed parallel call ran again"

    runtime.run(main)


def test_each_attempt_gets_fresh_copies_of_context_and_arguments(runtime):
    seen: list[Any] = []

    def greedy(cart: dict[str, Any], items: list[str], *, ctx: StepContext) -> list[Any]:
        seen.append((dict(cart), list(items)))
        cart["touched"] = True
        items.append("extra")
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails after changing its arguments")
        return [cart, items]

    Domain("Cart", take=Method(greedy, retry=Retry(limit=2, delay=0)))

    @workflow("cart", registry=runtime.registry)
    async def cart(run: Run) -> Any:
        return await run.Cart({"id": 1}).take(("a",))

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("cart")).run_id)
        assert obj.status == "completed", obj.info
        assert seen == [({"id": 1}, ["a"]), ({"id": 1}, ["a"])]  # a tuple arrives as a list

    runtime.run(main)


def test_any_public_name_can_be_a_method(runtime):
    Domain("Route", path=lambda ctx: f"/{ctx['to']}", then=lambda ctx: ctx + "/then", send=lambda ctx: ctx + "!")

    @workflow("route", registry=runtime.registry)
    async def route(run: Run) -> Any:
        return [await run.Route({"to": "x"}).path(), await run.Route({"to": "y"}).path().then().send()]

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("route")).run_id)
        assert obj.info["output"] == ["/x", "/y/then!"], obj.info

    runtime.run(main)
