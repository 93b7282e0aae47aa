"""Durable timers, event waits and questions: restarts, timeouts, buffering, validation, cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flareflow import InvalidInput, Run, WaitTimeout, workflow
from flareflow.engine.errors import RunFinished
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

from .helpers import advance, finished, has_event, idle, of_type, types, wait_until

DAY = 86400


def _sleeper(calls: list[str]) -> Registry:
    reg = Registry()

    def record(name: str) -> str:
        calls.append(name)
        return name

    @workflow("sleeper", registry=reg)
    async def sleeper(run: Run) -> str:
        await run.step("before", record, "before")
        await run.sleep("cool-off", "1 day")
        await run.step("after", record, "after")
        return "woke"

    return reg


def test_sleep_survives_a_restart(runtime):
    calls: list[str] = []
    runtime.registry = _sleeper(calls)

    async def main(rt: LocalRuntime) -> None:
        obj = await rt.start_run("sleeper")
        run_id = obj.run_id
        await idle(rt)
        obj = rt.get(run_id)
        assert obj.status == "waiting"
        waiting = obj.describe()["waiting"]
        assert [(w["kind"], w["name"]) for w in waiting] == [("sleep", "cool-off")]
        sleep_event = of_type(obj, "run.waiting")[0]
        assert sleep_event["reason"] == "sleep" and sleep_event["until"] == waiting[0]["until"]
        assert calls == ["before"]

        rt2 = await runtime.restart(advance=DAY + 60)
        assert await rt2.recover() == [run_id]
        done = await finished(rt2, run_id)
        assert done.status == "completed" and done.info["output"] == "woke"
        assert calls == ["before", "after"]
        assert done.describe()["waiting"] == []

    runtime.run(main)


def test_sleep_not_yet_due_after_restart_keeps_waiting(runtime):
    calls: list[str] = []
    runtime.registry = _sleeper(calls)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("sleeper")).run_id
        await idle(rt)
        rt2 = await runtime.restart(advance=DAY - 60)
        await rt2.recover()
        await idle(rt2)
        assert rt2.get(run_id).status == "waiting"
        assert calls == ["before"]
        assert rt2.next_alarm() == pytest.approx(clock.now() + 60)
        await advance(rt2, clock, 59)
        assert calls == ["before"]
        await advance(rt2, clock, 1)
        done = await finished(rt2, run_id)
        assert done.status == "completed"
        assert calls == ["before", "after"]

    runtime.run(main)


def _waiter(*, catch: bool, timeout: str | None = "1 hour") -> Registry:
    reg = Registry()

    @workflow("waiter", registry=reg)
    async def waiter(run: Run) -> Any:
        try:
            payload = await run.wait_for_event("approval", timeout=timeout)
        except WaitTimeout as exc:
            if not catch:
                raise
            return {"timed_out": exc.name, "after": exc.timeout}
        return {"approved": payload}

    return reg


def test_wait_for_event_times_out_and_the_timeout_is_catchable(runtime):
    runtime.registry = _waiter(catch=True)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("waiter")).run_id
        await idle(rt)
        waiting = of_type(rt.get(run_id), "run.waiting")
        assert waiting[0]["reason"] == "event" and waiting[0]["event_type"] == "approval"
        assert waiting[0]["until"] is not None
        await advance(rt, clock, 3599)
        assert rt.get(run_id).status == "waiting"
        await advance(rt, clock, 1)
        done = await finished(rt, run_id)
        assert done.status == "completed"
        assert done.info["output"] == {"timed_out": "approval", "after": 3600}
        failed = of_type(done, "step.failed")
        assert failed[0]["error"]["type"] == "WaitTimeout"
        assert failed[0]["step"] == "approval#1"

    runtime.run(main)


def test_uncaught_wait_timeout_fails_the_run(runtime):
    runtime.registry = _waiter(catch=False, timeout="30s")
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("waiter")).run_id
        await idle(rt)
        clock.advance(30)
        done = await finished(rt, run_id)
        assert done.status == "failed"
        assert done.info["error"]["type"] == "WaitTimeout"
        assert "approval" in done.info["error"]["message"]
        # A late event is refused: the run is over.
        n = len(done.events())
        with pytest.raises(RunFinished):
            await rt.send_event(run_id, "approval", True)
        assert len(rt.get(run_id).events()) == n

    runtime.run(main)


def test_event_arriving_in_time_beats_the_timeout(runtime):
    runtime.registry = _waiter(catch=True)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("waiter")).run_id
        await idle(rt)
        await advance(rt, clock, 1800)
        await rt.send_event(run_id, "approval", {"by": "ann"})
        done = await finished(rt, run_id)
        assert done.info["output"] == {"approved": {"by": "ann"}}
        n = len(done.events())
        await advance(rt, clock, 3600)  # the old timeout must not fire any more
        assert len(rt.get(run_id).events()) == n
        assert "step.failed" not in types(rt.get(run_id))

    runtime.run(main)


def test_event_delivered_before_the_wait_is_buffered(runtime):
    @workflow("late-waiter", registry=runtime.registry)
    async def late_waiter(run: Run) -> Any:
        await run.sleep("first", "1 hour")
        first = await run.wait_for_event("payment", type="payment.received")
        second = await run.wait_for_event("payment", type="payment.received")
        other = await run.wait_for_event("refund")
        return [first, second, other]

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("late-waiter")).run_id
        await idle(rt)
        assert rt.get(run_id).status == "waiting"
        # Delivered while the run sleeps, in an order different from the waits.
        await rt.send_event(run_id, "refund", {"r": 1})
        await rt.send_event(run_id, "payment.received", {"p": 1})
        await rt.send_event(run_id, "payment.received", {"p": 2})
        await idle(rt)
        received = of_type(rt.get(run_id), "event.received")
        assert [e["event_type"] for e in received] == ["refund", "payment.received", "payment.received"]
        assert rt.get(run_id).status == "waiting"  # still sleeping
        await advance(rt, clock, 3600)
        done = await finished(rt, run_id)
        assert done.status == "completed"
        assert done.info["output"] == [{"p": 1}, {"p": 2}, {"r": 1}]

    runtime.run(main)


def test_event_sent_right_after_start_is_not_lost(runtime):
    runtime.registry = _waiter(catch=False, timeout=None)

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("waiter")).run_id
        await rt.send_event(run_id, "approval", "yes")  # before the first activation ran
        done = await finished(rt, run_id)
        assert done.info["output"] == {"approved": "yes"}

    runtime.run(main)


def _asker() -> Registry:
    reg = Registry()

    @workflow("asker", registry=reg)
    async def asker(run: Run) -> Any:
        ok = await run.ask("Ship it?", schema={"type": "boolean"})
        qty = await run.ask(
            "How many?", name="qty",
            schema={"type": "integer", "minimum": 1, "maximum": 10},
        )
        note = await run.ask("Any note?")  # no schema: anything JSON goes
        return {"ok": ok, "qty": qty, "note": note}

    return reg


def test_ask_validates_answers_and_rejected_answers_store_nothing(runtime):
    runtime.registry = _asker()

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("asker")).run_id
        await idle(rt)
        obj = rt.get(run_id)
        requested = of_type(obj, "input.requested")
        assert requested == [requested[0]] and requested[0]["prompt"] == "Ship it?"
        assert requested[0]["schema"] == {"type": "boolean"}

        n = len(obj.events())
        for bad in ("yes", 1, None, [True]):
            with pytest.raises(InvalidInput):
                await rt.answer(run_id, bad)
        await idle(rt)
        assert len(rt.get(run_id).events()) == n, "a rejected answer emitted events"
        inbox = rt.get(run_id).sql.exec("SELECT COUNT(*) FROM inbox")[0][0]
        assert inbox == 0, "a rejected answer was stored"
        assert rt.get(run_id).describe()["waiting"][0]["prompt"] == "Ship it?"

        assert await rt.answer(run_id, True) == "ask#1"
        await idle(rt)
        assert of_type(rt.get(run_id), "input.received")[0]["value"] is True

        with pytest.raises(InvalidInput, match=r"maximum|10"):
            await rt.answer(run_id, 11)
        with pytest.raises(InvalidInput):
            await rt.answer(run_id, 2.5)
        with pytest.raises(InvalidInput):
            await rt.answer(run_id, 3, step="no-such-question")
        assert await rt.answer(run_id, 3, step="qty") == "qty#1"
        await idle(rt)
        assert await rt.answer(run_id, {"free": ["form"]}) == "ask#2"
        done = await finished(rt, run_id)
        assert done.info["output"] == {"ok": True, "qty": 3, "note": {"free": ["form"]}}
        assert len(of_type(done, "input.received")) == 3
        assert len(of_type(done, "input.requested")) == 3

    runtime.run(main)


def test_ask_without_a_schema_accepts_any_json_answer(runtime):
    """``schema`` defaults to None ("no schema"): asking must not fail the run.

    Regression: Run.ask called check_schema(None) unconditionally, so a bare
    ``run.ask("prompt")`` failed the run with "SchemaError: #: schema must be an object, got null".
    """

    @workflow("free-form", registry=runtime.registry)
    async def free_form(run: Run) -> Any:
        return await run.ask("Anything to add?")

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("free-form")).run_id
        await idle(rt)
        obj = rt.get(run_id)
        assert obj.status == "waiting", obj.info["error"]
        assert of_type(obj, "input.requested")[0]["schema"] is None
        await rt.answer(run_id, {"note": ["any", 1, None]})
        done = await finished(rt, run_id)
        assert done.info["output"] == {"note": ["any", 1, None]}

    runtime.run(main)


def test_answer_when_nothing_is_asked_is_rejected(runtime):
    runtime.registry = _sleeper([])

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("sleeper")).run_id
        await idle(rt)
        n = len(rt.get(run_id).events())
        with pytest.raises(InvalidInput, match="not waiting"):
            await rt.answer(run_id, True)
        assert len(rt.get(run_id).events()) == n

    runtime.run(main)


def test_parallel_questions_need_the_step_named(runtime):
    @workflow("two-questions", registry=runtime.registry)
    async def two(run: Run) -> Any:
        return await run.parallel(
            run.ask("Colour?", name="colour", schema={"type": "string", "enum": ["red", "blue"]}),
            run.ask("Size?", name="size", schema={"type": "integer"}),
        )

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("two-questions")).run_id
        await idle(rt)
        assert {w["name"] for w in rt.get(run_id).describe()["waiting"]} == {"colour", "size"}
        with pytest.raises(InvalidInput, match="2 open questions"):
            await rt.answer(run_id, "red")
        with pytest.raises(InvalidInput):
            await rt.answer(run_id, "green", step="colour")
        await rt.answer(run_id, 7, step="size")
        await idle(rt)
        assert rt.get(run_id).status == "waiting"
        # Only one question is open now, so the step may be omitted.
        assert await rt.answer(run_id, "blue") == "colour#1"
        done = await finished(rt, run_id)
        assert done.info["output"] == ["blue", 7]

    runtime.run(main)


def test_ask_with_timeout_raises_wait_timeout(runtime):
    @workflow("impatient", registry=runtime.registry)
    async def impatient(run: Run) -> Any:
        try:
            return await run.ask("Approve?", schema={"type": "boolean"}, timeout="2 hours")
        except WaitTimeout:
            return "default"

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("impatient")).run_id
        await idle(rt)
        clock.advance(7200)
        done = await finished(rt, run_id)
        assert done.info["output"] == "default"
        with pytest.raises(RunFinished):
            await rt.answer(run_id, True)

    runtime.run(main)


def test_deliveries_to_a_finished_run_raise_and_change_nothing(runtime):
    runtime.registry = _waiter(catch=False, timeout=None)

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("waiter")).run_id
        await idle(rt)
        await rt.send_event(run_id, "approval", 1)
        done = await finished(rt, run_id)
        before = done.events()
        info = dict(done.info)
        with pytest.raises(RunFinished, match="completed"):
            await rt.send_event(run_id, "approval", 2)
        with pytest.raises(RunFinished):
            await rt.answer(run_id, True)
        with pytest.raises(RunFinished):
            await rt.cancel(run_id)
        await idle(rt)
        after = rt.get(run_id)
        assert after.events() == before
        assert after.status == "completed"
        assert after.info["output"] == info["output"]
        assert after.sql.exec("SELECT COUNT(*) FROM inbox")[0][0] == 1

    runtime.run(main)


def test_cancel_a_sleeping_run(runtime):
    calls: list[str] = []
    runtime.registry = _sleeper(calls)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("sleeper")).run_id
        await idle(rt)
        await rt.cancel(run_id, "changed my mind")
        obj = rt.get(run_id)
        assert obj.status == "cancelled"
        assert types(obj)[-1] == "run.cancelled"
        assert of_type(obj, "run.cancelled")[0]["reason"] == "changed my mind"
        n = len(obj.events())
        assert rt.next_alarm() is None

        await advance(rt, clock, 2 * DAY)
        assert len(rt.get(run_id).events()) == n, types(rt.get(run_id))
        assert calls == ["before"]
        assert rt.get(run_id).status == "cancelled"
        with pytest.raises(RunFinished):
            await rt.send_event(run_id, "anything")

        # A restart does not resurrect it either.
        rt2 = await runtime.restart()
        assert await rt2.recover() == []
        await advance(rt2, clock, DAY)
        assert len(rt2.get(run_id).events()) == n
        assert calls == ["before"]

    runtime.run(main)


def test_cancel_a_run_with_a_step_in_flight(runtime):
    started: list[int] = []

    async def hang() -> None:
        started.append(1)
        await asyncio.sleep(3600)

    @workflow("stuck", registry=runtime.registry)
    async def stuck(run: Run) -> Any:
        await run.step("hang", hang)
        return "never"

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("stuck")).run_id
        await wait_until(lambda: started == [1], "the step to start")
        await rt.cancel(run_id)
        await idle(rt)
        obj = rt.get(run_id)
        assert obj.status == "cancelled"
        assert types(obj)[-1] == "run.cancelled"
        assert not has_event(rt, run_id, "step.completed")()
        assert not has_event(rt, run_id, "step.failed")()

    runtime.run(main)
