"""Domain calls on the local runtime: the issue's example, hashed keys (reordering, loops, divergence),
names and typos, non-JSON values, the step context, per-method retry and timeout, parallel calls."""

from __future__ import annotations

from typing import Any

import pytest

from flareflow import Domain, Method, Retry, Run, WorkflowDefinitionError, workflow
from flareflow.engine.domains import call_hash
from flareflow.local import LocalRuntime
from tests.runtime.helpers import finished, idle, of_type

CALLS: list[tuple[str, Any]] = []


async def check(product: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(("check", product["sku"]))
    return {"sku": product["sku"], "in_stock": True}


def reserve(product: dict[str, Any], *, quantity: int) -> dict[str, Any]:
    CALLS.append(("reserve", quantity))
    return {"sku": product["sku"], "held": quantity}


Inventory = Domain("Inventory", check=check,
                   reserve=Method(reserve, retry=Retry(limit=10, delay="2s", backoff="exponential"), timeout="30s"))


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


def steps_of(obj: Any) -> list[dict[str, Any]]:
    return list(obj.describe()["steps"])


def test_the_issue_example_runs_and_names_steps_by_path(runtime):
    @workflow("order", registry=runtime.registry)
    async def order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
        stock = await run.Inventory(order["product"]).check()
        held = await run.Inventory(order["product"]).reserve(quantity=order["quantity"])
        return {"stock": stock, "held": held}

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("order", {"product": {"sku": "ABC"}, "quantity": 2})).run_id)
        assert obj.status == "completed", obj.info
        assert obj.info["output"] == {"stock": {"sku": "ABC", "in_stock": True}, "held": {"sku": "ABC", "held": 2}}
        done = of_type(obj, "step.completed")
        assert [e["name"] for e in done] == ["Inventory.check", "Inventory.reserve"]
        check_hash = call_hash("Inventory.check", {"sku": "ABC"}, [{"args": [], "kwargs": {}}])
        assert done[0]["hash"] == check_hash
        assert done[0]["step"] == f"Inventory.check@{check_hash}#1"
        assert all(e["hash"] for e in of_type(obj, "step.started"))
        recorded = steps_of(obj)
        assert [s["name"] for s in recorded] == ["Inventory.check", "Inventory.reserve"]

    runtime.run(main)


def test_run_domain_by_name_or_object_and_typos_name_what_exists(runtime):
    @workflow("lookup", registry=runtime.registry)
    async def lookup(run: Run) -> list[Any]:
        a = await run.domain("Inventory")({"sku": "A"}).check()
        b = await run.domain(Inventory)({"sku": "B"}).check()
        return [a["sku"], b["sku"]]

    @workflow("typo", registry=runtime.registry)
    async def typo(run: Run, which: str) -> Any:
        if which == "domain":
            return await run.Inventroy({"sku": "A"}).check()
        if which == "method":
            return await run.Inventory({"sku": "A"}).chek()
        if which == "bare":
            return await run.Inventory({"sku": "A"})
        return await run.domain("Nope")({}).check()

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("lookup")).run_id)
        assert obj.info["output"] == ["A", "B"]
        messages = {}
        for which in ("domain", "method", "bare", "named"):
            obj = await finished(rt, (await rt.start_run("typo", which)).run_id)
            assert obj.status == "failed"
            messages[which] = obj.info["error"]["message"]
        assert "no attribute 'Inventroy'" in messages["domain"] and "Inventory" in messages["domain"]
        assert "no method 'chek'" in messages["method"] and "check, reserve" in messages["method"]
        assert "needs a method" in messages["bare"]
        assert "no domain is named 'Nope'" in messages["named"]

    runtime.run(main)


def test_names_are_checked_when_the_domain_is_created():
    for bad in ("step", "state", "id", "parallel", "ai", "2fast", "with-dash", "_private", "class"):
        with pytest.raises(WorkflowDefinitionError):
            Domain(bad, check=check)
    with pytest.raises(WorkflowDefinitionError, match="no methods"):
        Domain("Empty")
    with pytest.raises(WorkflowDefinitionError, match="method name"):
        Domain("BadMethod", **{"_hidden": check})
    with pytest.raises(WorkflowDefinitionError, match="must be callable"):
        Domain("NotCallable", check=42)  # type: ignore[arg-type]


def test_two_domains_of_one_name_in_different_modules_are_an_error():
    def define(module: str, blank_lines: int = 0) -> Any:
        source = "\n" * blank_lines + "from flareflow import Domain\nTwice = Domain('Twice', check=len)\n"
        scope: dict[str, Any] = {"__name__": module}
        exec(compile(source, f"/project/{module}.py", "exec"), scope)
        return scope["Twice"]

    first = define("shop.inventory")
    again = define("shop.inventory", blank_lines=3)  # the module imported again after an edit: replaced
    assert again is not first and again.location == "/project/shop.inventory.py:5"
    clash = "two domains are named 'Twice': /project/shop.inventory.py:5 and /project/shop.billing.py:2"
    with pytest.raises(WorkflowDefinitionError, match=clash):
        define("shop.billing")


def test_a_non_json_context_or_argument_names_the_call(runtime):
    @workflow("bad-json", registry=runtime.registry)
    async def bad_json(run: Run, which: str) -> Any:
        if which == "context":
            return await run.Inventory({"sku": {1, 2}}).check()
        return await run.Inventory({"sku": "A"}).reserve(quantity=object())

    async def main(rt: LocalRuntime) -> None:
        for which, expected in (("context", "the context of Inventory.check is not JSON (dict)"),
                                ("argument", "argument 'quantity' of Inventory.reserve is not JSON (object)")):
            obj = await finished(rt, (await rt.start_run("bad-json", which)).run_id)
            assert obj.status == "failed"
            assert obj.info["error"]["type"] == "InvalidInput"
            assert obj.info["error"]["message"].startswith(expected), obj.info["error"]
        assert CALLS == []

    runtime.run(main)


def test_wrong_arguments_fail_at_the_call_naming_it(runtime):
    @workflow("bad-args", registry=runtime.registry)
    async def bad_args(run: Run) -> Any:
        return await run.Inventory({"sku": "A"}).reserve(7)

    async def main(rt: LocalRuntime) -> None:
        obj = await finished(rt, (await rt.start_run("bad-args")).run_id)
        assert obj.info["error"]["type"] == "TypeError"
        assert obj.info["error"]["message"].startswith("Inventory.reserve: the handler cannot take these arguments")
        assert of_type(obj, "step.started") == []

    runtime.run(main)


def _ordered(runtime: Any, order: list[str]) -> None:
    """``reorder``: checks each sku of ``order``, waits for ``go``, returns what each check answered."""
    @workflow("reorder", registry=runtime.registry)
    async def reorder(run: Run) -> list[Any]:
        answers = [await run.Inventory({"sku": sku}).check() for sku in order]
        await run.wait_for_event("go")
        return [a["sku"] for a in answers]


def test_reordering_calls_with_different_contexts_replays_each_ones_result(runtime):
    from flareflow.engine.registry import Registry

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("reorder")).run_id
        await idle(rt)
        assert CALLS == [("check", "A"), ("check", "B")]
        CALLS.clear()
        runtime.registry = Registry()
        _ordered(runtime, ["B", "A"])  # new code calls them the other way round
        rt2 = await runtime.restart()
        await rt2.recover()
        await rt2.send_event(run_id, "go")
        obj = await finished(rt2, run_id)
        assert obj.status == "completed", obj.info
        assert obj.info["output"] == ["B", "A"], "a reordered call got the other call's result"
        assert CALLS == [], "a reordered call ran again instead of replaying"

    _ordered(runtime, ["A", "B"])
    runtime.run(main)


def test_identical_calls_in_a_loop_stay_distinct_and_replay_in_order(runtime):
    @workflow("loop", registry=runtime.registry)
    async def loop(run: Run) -> list[Any]:
        held = [await run.Inventory({"sku": "A"}).reserve(quantity=1) for _ in range(3)]
        await run.wait_for_event("go")
        return [h["held"] for h in held]

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("loop")).run_id
        await idle(rt)
        obj = rt.get(run_id)
        keys = [e["step"] for e in of_type(obj, "step.completed")]
        digest = call_hash("Inventory.reserve", {"sku": "A"}, [{"args": [], "kwargs": {"quantity": 1}}])
        assert keys == [f"Inventory.reserve@{digest}#{n}" for n in (1, 2, 3)]
        rt2 = await runtime.restart()
        await rt2.recover()
        await rt2.send_event(run_id, "go")
        obj = await finished(rt2, run_id)
        assert obj.info["output"] == [1, 1, 1]
        assert CALLS == [("reserve", 1)] * 3, "a replayed loop ran a call again"

    runtime.run(main)


def _versioned(runtime: Any, method: str, sku: str = "A") -> None:
    @workflow("changing", registry=runtime.registry)
    async def changing(run: Run) -> Any:
        first = await run.domain("Inventory")({"sku": sku}).__getattr__(method)(**(
            {"quantity": 1} if method == "reserve" else {}))
        await run.wait_for_event("go")
        return first


@pytest.mark.parametrize("change", ["path", "context"])
def test_a_changed_call_at_a_recorded_position_is_a_divergence_naming_both(runtime, change):
    from flareflow.engine.registry import Registry

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("changing")).run_id
        await idle(rt)
        runtime.registry = Registry()
        if change == "path":
            _versioned(runtime, "reserve")
        else:
            _versioned(runtime, "check", sku="Z")
        rt2 = await runtime.restart()
        await rt2.recover()
        await idle(rt2)
        obj = rt2.get(run_id)
        assert obj.status == "waiting"
        held = [e for e in of_type(obj, "run.waiting") if e["reason"] == "code"]
        assert held, obj.events()
        divergence = held[-1]["divergence"]
        assert divergence["recorded"]["name"] == "Inventory.check"
        assert divergence["new"]["name"] == ("Inventory.reserve" if change == "path" else "Inventory.check")
        assert divergence["recorded"]["key"] != divergence["new"]["key"]
        if change == "path":
            assert "'Inventory.check'" in held[-1]["message"] and "'Inventory.reserve'" in held[-1]["message"]
        assert CALLS == [("check", "A")], "new work ran on a diverged history"

    _versioned(runtime, "check")
    runtime.run(main)


def test_flareflow_check_sees_reordered_calls_as_matching_and_a_changed_path_as_a_divergence(runtime):
    from flareflow.engine.registry import Registry
    from flareflow.engine.replay import check_replay, describe_problem, records_from_steps

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("reorder")).run_id
        await idle(rt)
        described = rt.get(run_id).describe()
        history = records_from_steps(described["steps"])
        for order, expected in ((["B", "A"], None), (["A", "B"], None)):
            runtime.registry = reg = Registry()
            _ordered(runtime, order)
            assert await check_replay(reg, described, history) is expected
        reg = Registry()

        @workflow("reorder", registry=reg)
        async def renamed(run: Run) -> Any:
            await run.Inventory({"sku": "A"}).reserve(quantity=1)

        problem = await check_replay(reg, described, history)
        assert problem is not None and problem["problem"] == "diverges"
        line = describe_problem(problem)
        assert "recorded step 'Inventory.check'" in line and "calls step 'Inventory.reserve'" in line, line

    _ordered(runtime, ["A", "B"])
    runtime.run(main)
