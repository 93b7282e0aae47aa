"""Replay: recorded steps are never re-run, diverging or missing code holds the run, patches rebuild state."""

from __future__ import annotations

from typing import Any

from flareflow import Run, workflow
from flareflow.durable_objects.coordinator import RunCoordinator
from flareflow.engine import jsonpatch
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

from .helpers import advance, finished, has_event, idle, of_type, types, wait_until


def _counting_registry(calls: list[str]) -> Registry:
    reg = Registry()

    def record(name: str) -> str:
        calls.append(name)
        return f"{name}-result-{len(calls)}"

    @workflow("pipeline", registry=reg)
    async def pipeline(run: Run, inp: Any = None) -> dict[str, Any]:
        a = await run.step("a", record, "a")
        b = await run.step("b", record, "b")
        await run.sleep("nap", "1 hour")
        c = await run.step("c", record, "c")
        go = await run.wait_for_event("go")
        d = await run.step("d", record, "d")
        return {"a": a, "b": b, "c": c, "d": d, "go": go}

    return reg


def test_completed_steps_run_once_across_eviction_and_restart(runtime):
    calls: list[str] = []
    runtime.registry = _counting_registry(calls)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        obj = await rt.start_run("pipeline")
        run_id = obj.run_id
        await idle(rt)
        assert calls == ["a", "b"]
        assert rt.get(run_id).status == "waiting"

        # Drop the in-memory object: the alarm rebuilds it from SQL and replays a and b.
        rt.evict(run_id)
        await advance(rt, clock, 3600)
        assert calls == ["a", "b", "c"]
        assert rt.get(run_id).status == "waiting"
        rt.evict(run_id)  # evict again while waiting for the event

        # A new runtime on the same directory resumes the run.
        rt2 = await runtime.restart()
        assert await rt2.recover() == [run_id]
        await idle(rt2)
        assert calls == ["a", "b", "c"], "resume re-ran a recorded step"
        await rt2.send_event(run_id, "go", {"n": 1})
        done = await finished(rt2, run_id)

        assert done.status == "completed"
        assert calls == ["a", "b", "c", "d"]
        # The output carries the values recorded the first (and only) time each step ran.
        assert done.info["output"] == {
            "a": "a-result-1", "b": "b-result-2", "c": "c-result-3", "d": "d-result-4", "go": {"n": 1},
        }
        started = [e["step"] for e in of_type(done, "step.started")]
        assert started == ["a#1", "b#1", "c#1", "d#1"]

    runtime.run(main)


def test_replayed_step_returns_recorded_value_not_a_new_one(runtime):
    """A step whose function would now return something else still replays its recorded result."""
    values = iter(["first", "second", "third"])
    seen: list[str] = []

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> str:
        v = await run.step("pick", lambda: next(values))
        seen.append(v)
        await run.sleep("nap", 60)
        return v

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        obj = await rt.start_run("wf")
        await idle(rt)
        rt.evict(obj.run_id)
        clock.advance(60)
        done = await finished(rt, obj.run_id)
        assert done.info["output"] == "first"
        assert seen == ["first", "first"]  # live run, then the replay: same value

    runtime.run(main)


def _two_versions(calls: list[str]) -> tuple[Registry, Registry]:
    old, new = Registry(), Registry()

    def record(name: str) -> str:
        calls.append(name)
        return name

    @workflow("evolving", registry=old)
    async def v1(run: Run) -> str:
        await run.step("charge-card", record, "charge-card")
        await run.sleep("cool-off", "1 day")
        await run.step("ship", record, "ship")
        return "v1"

    @workflow("evolving", registry=new)
    async def v2(run: Run) -> str:
        await run.step("reserve-stock", record, "reserve-stock")  # a different step at position 0
        await run.sleep("cool-off", "1 day")
        await run.step("ship", record, "ship")
        return "v2"

    return old, new


def held_for_code(obj: RunCoordinator) -> dict[str, Any]:
    """The run's open wait for its code (it must be held), checked against its summary and event."""
    assert obj.status == "waiting", obj.status
    wait = obj.open_waits()[0]
    assert wait["kind"] == "code", obj.open_waits()
    listed = obj.summary()["waiting_for"][0]
    assert listed["kind"] == "code" and listed["message"] == wait["message"][:200]
    held = [e for e in of_type(obj, "run.waiting") if e["reason"] == "code"]
    assert held and held[-1]["message"] == wait["message"]
    assert "failed" not in types(obj)
    return {**wait, "event": held[-1]}


def test_divergent_replay_holds_the_run_naming_the_step_and_the_difference(runtime):
    calls: list[str] = []
    old, new = _two_versions(calls)
    runtime.registry = old

    async def main(rt: LocalRuntime) -> None:
        obj = await rt.start_run("evolving")
        run_id = obj.run_id
        await idle(rt)
        assert rt.get(run_id).status == "waiting"

        rt2 = await runtime.restart(advance=86400, registry=new)
        await rt2.recover()
        await idle(rt2)
        held = held_for_code(rt2.get(run_id))
        msg = held["message"]
        assert "charge-card" in msg and "reserve-stock" in msg and "position 0" in msg, msg
        assert "held" in msg
        assert held["event"]["step"] == "charge-card#1"
        assert held["event"]["divergence"] == {
            "position": "0", "recorded": {"kind": "step", "name": "charge-card", "key": "charge-card#1"},
            "new": {"kind": "step", "name": "reserve-stock", "key": "reserve-stock#1"}}
        assert calls == ["charge-card"], "the diverging step must not run"
        assert rt2.held_runs() == [run_id]

        # the re-check timer finds the same code: still held, no second run.waiting
        await advance(rt2, runtime.clock, 60)
        again = held_for_code(rt2.get(run_id))
        assert again["event"]["seq"] == held["event"]["seq"]

        # the code matches again (reverted): the run continues from where it was
        rt3 = await runtime.restart(registry=old)
        await rt3.recover()
        done = await finished(rt3, run_id)
        assert done.status == "completed" and done.info["output"] == "v1"
        assert calls == ["charge-card", "ship"]
        assert done.open_waits() == [] and rt3.held_runs() == []

    runtime.run(main)


def test_divergence_is_not_swallowed_by_a_broad_except(runtime):
    """Workflow code that catches every Exception still cannot hide a replay divergence."""
    old, new = runtime.registry, Registry()  # the code the run starts on, and after a deploy
    after: list[str] = []

    @workflow("wf", registry=old)
    async def v1(run: Run) -> str:
        await run.step("a", lambda: 1)
        await run.sleep("nap", 10)
        return "done"

    @workflow("wf", registry=new)
    async def v2(run: Run) -> str:
        try:  # a deliberately broad except, as a careless author would write it
            await run.step("b", lambda: 1)
        except Exception:
            after.append("swallowed")
        await run.sleep("nap", 10)
        return "done"

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        rt2 = await runtime.restart(advance=10, registry=new)
        await rt2.recover()
        await idle(rt2)
        return held_for_code(rt2.get(run_id))

    held = runtime.run(main)
    assert "'a'" in held["message"] and "'b'" in held["message"]
    assert after == [], "the divergence reached the workflow's except Exception"


def test_step_no_longer_reached_is_a_divergence(runtime):
    old, new = runtime.registry, Registry()  # the code the run starts on, and after a deploy

    @workflow("wf", registry=old)
    async def v1(run: Run) -> str:
        await run.step("a", lambda: 1)
        await run.step("audit", lambda: 2)
        await run.sleep("nap", 10)
        return "done"

    @workflow("wf", registry=new)
    async def v2(run: Run) -> str:
        await run.step("a", lambda: 1)
        return "done"  # "audit" and "nap" were removed from the code

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        rt2 = await runtime.restart(registry=new)
        await rt2.recover()
        await idle(rt2)
        return held_for_code(rt2.get(run_id))

    held = runtime.run(main)
    assert "audit" in held["message"]
    assert held["event"]["divergence"]["new"] is None
    assert held["event"]["divergence"]["recorded"]["key"] == "audit#1"


def test_a_missing_workflow_holds_the_run_until_it_is_registered_again(runtime):
    old, empty = runtime.registry, Registry()

    @workflow("wf", registry=old)
    async def wf(run: Run) -> str:
        await run.sleep("nap", 10)
        return "done"

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        empty.import_errors.append("workflows/wf.py:3: import failed: SyntaxError: invalid syntax")
        rt2 = await runtime.restart(advance=10, registry=empty)
        await rt2.recover()
        await idle(rt2)
        held = held_for_code(rt2.get(run_id))
        assert "unknown workflow 'wf'" in held["message"] and "SyntaxError" in held["message"]
        assert held["event"]["name"] == "wf" and held["event"]["step"] is None
        await rt2.cancel(run_id, "given up")  # an operator may cancel a held run
        assert rt2.get(run_id).status == "cancelled" and rt2.held_runs() == []

    runtime.run(main)


def test_patches_from_events_rebuild_the_stored_state(runtime):
    @workflow("stateful", registry=runtime.registry)
    async def stateful(run: Run, inp: Any = None) -> str:
        run.state["status"] = "starting"
        run.state["items"] = []
        await run.step("one", lambda: 1)
        run.state["items"].append({"id": 1, "tags": ["x"]})
        run.state["status"] = "working"
        run.state["tmp"] = {"deep": {"er": True}}
        await run.step("two", lambda: 2)
        del run.state["tmp"]
        run.state["items"][0]["tags"].append("y/~z")  # pointer escaping
        run.state["items"].insert(0, {"id": 0})
        await run.sleep("nap", "1 hour")
        run.state["n"] = 1.5
        await run.step("noop", lambda: None)  # state unchanged by this step: empty patch
        await run.step("three", lambda: 3)
        run.state["status"] = "done"  # only recorded by run.completed
        run.state["items"].pop()
        return "ok"

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        obj = await rt.start_run("stateful")
        await idle(rt)
        rt.evict(obj.run_id)  # the state after the sleep is rebuilt by replaying code
        await advance(rt, clock, 3600)
        done = await finished(rt, obj.run_id)

        assert done.status == "completed"
        expected = {"status": "done", "items": [{"id": 0}], "n": 1.5}
        assert done.info["state"] == expected

        state: Any = {}
        after: dict[str, Any] = {}
        for event in done.events():
            if event["type"] in ("step.completed", "run.completed"):
                state = jsonpatch.apply(state, event["patch"])
                after[event.get("step", "run")] = state
        assert state == done.info["state"]

        # Intermediate states: what each completion had recorded by then.
        assert after["one#1"] == {"status": "starting", "items": []}
        assert after["two#1"] == {
            "status": "working", "items": [{"id": 1, "tags": ["x"]}], "tmp": {"deep": {"er": True}},
        }
        # Edits made before the sleep and after it are recorded by the next completion ("noop").
        assert after["noop#1"] == {
            "status": "working", "items": [{"id": 0}, {"id": 1, "tags": ["x", "y/~z"]}], "n": 1.5,
        }
        three = next(e for e in done.events() if e["type"] == "step.completed" and e["step"] == "three#1")
        assert three["patch"] == []  # nothing changed between noop and three

    runtime.run(main)


def test_replay_after_restart_matches_live_event_log(runtime):
    """Resuming must not duplicate any event: the log after restart is a continuation."""
    calls: list[str] = []
    runtime.registry = _counting_registry(calls)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("pipeline")).run_id
        await idle(rt)
        before = types(rt.get(run_id))
        rt2 = await runtime.restart()
        await rt2.recover()
        await idle(rt2)
        assert types(rt2.get(run_id)) == before  # replay alone emits nothing new
        await advance(rt2, clock, 3600)
        await wait_until(has_event(rt2, run_id, "run.waiting", name="go"), "event wait")
        await rt2.send_event(run_id, "go")
        done = await finished(rt2, run_id)
        assert types(done)[: len(before)] == before
        assert [e["seq"] for e in done.events()] == list(range(1, len(done.events()) + 1))

    runtime.run(main)
