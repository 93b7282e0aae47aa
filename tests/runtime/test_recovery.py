"""Recovery on the embedded runtime, in-process (the real-process tests are tests/cli/test_recovery.py).

Tried: a retry reopens a wait that timed out with its full timeout again (an event then completes
it); a retry of a run failed inside ``parallel`` reopens only the failed branch; a restart from a step
after a parallel block reuses both branches; a retry or a delete in the wrong status, an unknown
command and an unknown ``from_step`` are refused without writing anything; a restarted run's results
are its own (deleting the original does not break it, its offloaded payloads included).
"""

from __future__ import annotations

from typing import Any

import pytest

from flareflow import Retry, Run, workflow
from flareflow.engine.errors import InvalidInput, RunNotFound, RunStateConflict
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

from .helpers import advance, finished, idle, of_type


def _registry(calls: list[str], broken: set[str]) -> Registry:
    reg = Registry()

    def work(name: str) -> str:
        calls.append(name)
        if name in broken:
            raise ValueError(f"{name} is broken")
        return name * 3000  # ~ 12 KB for "left"/"right": offloaded to the blob store

    @workflow("gate", registry=reg)
    async def gate(run: Run) -> Any:
        await run.step("before", work, "before")
        got = await run.wait_for_event("go", timeout="1 hour")
        return {"got": got}

    @workflow("fan", registry=reg)
    async def fan(run: Run) -> Any:
        once = Retry(limit=1)
        left, right = await run.parallel(run.step("left", work, "left", retry=once),
                                         run.step("right", work, "right", retry=once))
        tail = await run.step("tail", work, "tail", retry=once)
        return {"sizes": [len(left), len(right)], "tail": tail[:4]}

    return reg


def test_retry_reopens_a_timed_out_wait_with_its_full_timeout(runtime):
    calls: list[str] = []
    runtime.registry = _registry(calls, set())

    async def main(rt: LocalRuntime) -> None:
        clock = runtime.clock
        run_id = (await rt.start_run("gate")).run_id
        await idle(rt)
        await advance(rt, clock, 3600)  # the hour-long wait times out: the run fails
        failed = await finished(rt, run_id)
        assert failed.status == "failed" and failed.info["error"]["type"] == "WaitTimeout"
        await rt.retry(run_id)
        await idle(rt)
        obj = rt.get(run_id)
        assert obj.status == "waiting"
        assert of_type(obj, "run.retried")[0]["steps"] == ["go#1"]
        await advance(rt, clock, 3599)  # a fresh hour: not timed out yet
        assert rt.get(run_id).status == "waiting"
        await rt.send_event(run_id, "go", 7)
        done = await finished(rt, run_id)
        assert done.status == "completed" and done.info["output"] == {"got": 7}
        assert calls == ["before"]  # the completed step was not run again

    runtime.run(main)


def test_retry_and_restart_around_parallel_branches(runtime):
    calls: list[str] = []
    broken = {"right"}
    runtime.registry = _registry(calls, broken)

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("fan")).run_id
        assert (await finished(rt, run_id)).status == "failed"
        assert sorted(calls) == ["left", "right"]
        broken.clear()
        await rt.retry(run_id)
        done = await finished(rt, run_id)
        assert done.status == "completed", done.info
        assert sorted(calls) == ["left", "right", "right", "tail"]  # only the failed branch again
        (reopened,) = of_type(done, "run.retried")[0]["steps"]
        assert reopened.endswith("right#1"), reopened
        # a restart from the step after the parallel block reuses both branches
        new = await rt.restart(run_id, "tail")
        again = await finished(rt, new.run_id)
        assert again.status == "completed" and again.info["output"] == done.info["output"]
        assert calls[4:] == ["tail"]
        started = of_type(again, "run.started")[0]
        assert started["restarted_from"] == {"run_id": run_id, "step": "tail#1"}
        assert len(started["reused"]) == 2
        # the new run's results are its own: the original can go, payloads and all
        await rt.delete(run_id)
        with pytest.raises(RunNotFound):
            rt.get(run_id)
        rt.evict(new.run_id)
        assert rt.get(new.run_id).describe()["output"] == done.info["output"]
        assert [len(s["result"]) for s in rt.get(new.run_id).describe()["steps"] if s["name"] == "left"] == [12000]
        assert list((rt.state_dir / "blobs" / "runs" / new.run_id).iterdir())  # re-stored under the new run
        assert not (rt.state_dir / "blobs" / "runs" / run_id).exists()

    runtime.run(main)


def test_wrong_commands_are_refused_and_write_nothing(runtime):
    calls: list[str] = []
    runtime.registry = _registry(calls, set())

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("gate")).run_id
        await idle(rt)
        obj = rt.get(run_id)
        seq = obj.store.next_seq
        with pytest.raises(RunStateConflict, match="only a failed run"):
            await rt.retry(run_id)
        with pytest.raises(RunStateConflict, match="cancel it first"):
            await rt.delete(run_id)
        with pytest.raises(InvalidInput, match="unknown command") as unknown:
            obj.command("explode")
        assert unknown.value.field == "command"
        with pytest.raises(InvalidInput, match="no step 'nope'") as no_step:
            await rt.restart(run_id, "nope")
        assert no_step.value.field == "from_step"
        assert rt.get(run_id).store.next_seq == seq and rt.get(run_id).status == "waiting"
        assert len(rt.index.ids()) == 1  # the refused restart started nothing

    runtime.run(main)
