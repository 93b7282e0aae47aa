"""Run databases are opened when used and closed when idle, at most ``max_open`` at once
(issue #10 item 1); a closed run still hears about deliveries another process leaves in its inbox."""

from __future__ import annotations

from typing import Any

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock
from flareflow.local.budget import open_budget

from .helpers import arun, idle, wait_until


def _registry() -> Registry:
    reg = Registry()

    @workflow("gate", registry=reg)
    async def gate(run: Run) -> Any:
        got = await run.wait_for_event("go")
        return await run.step("after", lambda: {"got": got})

    return reg


def test_the_budget_follows_the_descriptor_limit():
    assert open_budget(256) == 32
    assert open_budget(1024) == 160
    assert open_budget(64) == 4  # never below 4
    assert open_budget(1 << 20) == 256  # never above MAX_OPEN


def test_at_most_max_open_runs_are_open_and_every_run_still_finishes(runtime):
    runtime.registry = _registry()

    async def main(rt: LocalRuntime) -> None:
        peak = 0
        ids = []
        for _ in range(12):
            ids.append((await rt.start_run("gate")).run_id)
            await idle(rt)
            peak = max(peak, len(rt.open_runs))
        assert all(rt.get(r).status == "waiting" for r in ids)
        peak = max(peak, len(rt.open_runs))
        for i, run_id in enumerate(ids):
            await rt.send_event(run_id, "go", i)
            await idle(rt)
            peak = max(peak, len(rt.open_runs))
        assert [rt.get(r).info["output"] for r in ids] == [{"got": i} for i in range(12)]
        assert peak <= 3, peak
        assert len(rt.open_runs) <= 3

    runtime.run(main, max_open=3)


def test_a_closed_run_picks_up_a_delivery_from_another_process(tmp_path):
    """The owner closed the run (budget); another runtime (as ``flareflow send-event`` in another
    process would) leaves the event in its inbox; the owner notices through the file and finishes it."""

    async def main() -> None:
        reg = _registry()
        async with LocalRuntime(tmp_path, reg, clock=ManualClock(), max_open=2) as owner:
            ids = [(await owner.start_run("gate")).run_id for _ in range(4)]
            await idle(owner)
            first = ids[0]
            assert first not in owner.objects and owner.owns(first)  # closed, still executed here
            async with LocalRuntime(tmp_path, reg, clock=ManualClock()) as other:
                await other.send_event(first, "go", "from afar")
                assert not other.owns(first)
            await wait_until(lambda: owner.index.statuses()[first] == "completed", "the delivery was picked up")
            assert owner.get(first).info["output"] == {"got": "from afar"}

    arun(main())
