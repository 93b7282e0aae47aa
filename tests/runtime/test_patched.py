"""``run.patched``: runs recorded before a change keep the old path, the others take the new one, and a
run held by a divergence continues once a patched branch makes the code match its history."""

from __future__ import annotations

from typing import Any

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

from .helpers import advance, finished, idle


def versions(runtime: Any, first: str) -> tuple[list[str], dict[str, Registry]]:
    """The same workflow as shipped three times: v1 bills after the nap; v2 ships the change
    "bill-first" (bill before the nap) guarded by ``run.patched``; v3 has no guard (diverges for
    runs recorded on v1 past that point). The runtime starts on ``first``; returns the steps' calls
    (as they run) and the releases."""
    calls: list[str] = []
    regs = {"v1": Registry(), "v2": Registry(), "v3": Registry()}

    def act(name: str) -> str:
        calls.append(name)
        return name

    @workflow("order", registry=regs["v1"])
    async def v1(run: Run) -> list[Any]:
        a = await run.step("reserve", act, "reserve")
        await run.sleep("nap", "1 hour")
        b = await run.step("bill", act, "bill")
        return [a, b]

    @workflow("order", registry=regs["v2"])
    async def v2(run: Run) -> list[Any]:
        a = await run.step("reserve", act, "reserve")
        if run.patched("bill-first"):
            b = await run.step("bill-early", act, "bill-early")
            await run.sleep("nap", "1 hour")
        else:
            await run.sleep("nap", "1 hour")
            b = await run.step("bill", act, "bill")
        return [a, b, run.patched("late-audit") and await run.step("audit", act, "audit")]

    @workflow("order", registry=regs["v3"])
    async def v3(run: Run) -> list[Any]:
        a = await run.step("reserve", act, "reserve")
        b = await run.step("bill-early", act, "bill-early")
        await run.sleep("nap", "1 hour")
        return [a, b, await run.step("audit", act, "audit")]

    runtime.registry = regs[first]
    return calls, regs


async def shipped(runtime: Any, rt: LocalRuntime, code: Registry) -> tuple[LocalRuntime, str]:
    """Start ``order`` on ``rt``'s code and let it nap; then, an hour later, restart on ``code``."""
    run_id = (await rt.start_run("order")).run_id
    await idle(rt)
    rt2 = await runtime.restart(advance=3600, registry=code)
    await rt2.recover()
    return rt2, run_id


def test_runs_recorded_before_the_change_keep_the_old_path_new_runs_take_the_new(runtime):
    calls, regs = versions(runtime, "v1")

    async def main(rt: LocalRuntime) -> None:
        old_run = (await rt.start_run("order")).run_id  # on v1: reserve done, napping
        await idle(rt)
        assert calls == ["reserve"]

        rt2 = await runtime.restart(registry=regs["v2"])  # the change ships
        await rt2.recover()
        new_run = (await rt2.start_run("order")).run_id
        await idle(rt2)
        assert calls == ["reserve", "reserve", "bill-early"], "the new run takes the new branch at once"
        kinds = {s["step"]: s["kind"] for s in rt2.get(new_run).describe()["steps"]}
        assert kinds["patch:bill-first#1"] == "patch", kinds

        rt2.evict(new_run)  # replays decide from the recorded marker, not from the code's mood
        await advance(rt2, runtime.clock, 3600)
        old, new = await finished(rt2, old_run), await finished(rt2, new_run)
        # the old run went past "bill-first" on v1 (it napped first): old path; it had not reached
        # "late-audit" when the change shipped: new path
        assert old.status == "completed" and old.info["output"] == ["reserve", "bill", "audit"]
        assert new.status == "completed" and new.info["output"] == ["reserve", "bill-early", "audit"]
        assert sorted(calls) == sorted(["reserve", "reserve", "bill-early", "bill", "audit", "audit"])
        old_steps = [s["step"] for s in old.describe()["steps"]]
        assert "patch:bill-first#1" not in old_steps and "patch:late-audit#1" in old_steps

    runtime.run(main)


def test_dropping_the_patched_call_later_keeps_runs_that_recorded_the_marker(runtime):
    calls, regs = versions(runtime, "v2")

    async def main(rt: LocalRuntime) -> None:
        # on v2: reserve, the marker, bill-early, the nap; then v3, where the guard is removed
        rt2, run_id = await shipped(runtime, rt, regs["v3"])
        done = await finished(rt2, run_id)
        assert done.status == "completed", done.open_waits()
        assert done.info["output"] == ["reserve", "bill-early", "audit"]
        assert calls == ["reserve", "bill-early", "audit"]

    runtime.run(main)


def test_a_held_divergence_continues_once_a_patched_branch_matches_its_history(runtime):
    calls, regs = versions(runtime, "v1")

    async def main(rt: LocalRuntime) -> None:
        rt2, run_id = await shipped(runtime, rt, regs["v3"])  # v3: the change without a guard
        await idle(rt2)
        held = rt2.get(run_id)
        assert held.status == "waiting" and held.open_waits()[0]["kind"] == "code"
        assert "bill-early" in held.open_waits()[0]["message"]
        assert calls == ["reserve"]

        rt3 = await runtime.restart(registry=regs["v2"])  # the fix: the change behind run.patched
        await rt3.recover()
        done = await finished(rt3, run_id)
        assert done.status == "completed" and done.info["output"] == ["reserve", "bill", "audit"]
        assert calls == ["reserve", "bill", "audit"]

    runtime.run(main)
