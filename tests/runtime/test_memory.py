"""Per-run bookkeeping ends with the run: the local server's memory stays flat under a stream of runs.

Found with benchmarks/load.py (open loop, 100 short runs/s): the server's RSS grew ~1.5 MiB per 1,000
runs. tracemalloc showed ``LocalRuntime._settled`` keeping one ``asyncio.Event`` (with its deque,
~0.9 KiB) per run that ever had an activation, for good, and ``_subscribers`` keeping an empty list
per run anyone ever streamed; and ``_closed_at`` (now ``OpenRuns.watched``) kept the signature of
every run closed while unfinished (a burst of starts beyond the open budget) after it was opened
again and finished.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flareflow.engine import Run, workflow
from flareflow.local import LocalRuntime

from .helpers import finished


def test_finished_runs_leave_no_per_run_entries(runtime):
    @workflow("short", registry=runtime.registry)
    async def short(run: Run) -> Any:
        await run.step("a", lambda: 1)
        await run.step("b", lambda: 2)
        return 3

    async def main(rt: LocalRuntime) -> None:
        ids = []
        for _ in range(300):
            run_id = (await rt.start_run("short")).run_id
            events: list[dict[str, Any]] = []
            unsubscribe = rt.subscribe(run_id, events.append)  # as an SSE / WebSocket stream does
            ids.append((run_id, unsubscribe))
        for run_id, unsubscribe in ids:
            assert (await finished(rt, run_id)).status == "completed"
            unsubscribe()
        settle = asyncio.ensure_future(rt.wait_settled(ids[0][0]))  # someone waiting is kept ...
        await asyncio.sleep(0)
        assert len(rt._settled) <= 1
        rt.schedule(ids[0][0])  # ... until that run's next activation ends
        await asyncio.wait_for(settle, 5)
        assert rt._settled == {}, f"{len(rt._settled)} settled events kept"
        assert rt._subscribers == {}, f"{len(rt._subscribers)} subscriber lists kept"

    runtime.run(main)


def test_a_burst_beyond_the_open_budget_leaves_no_closed_signatures(runtime):
    @workflow("short", registry=runtime.registry)
    async def short(run: Run) -> Any:
        await run.step("a", lambda: 1)
        return 1

    async def main(rt: LocalRuntime) -> None:
        ids = [(await rt.start_run("short")).run_id for _ in range(100)]
        for run_id in ids:
            assert (await finished(rt, run_id)).status == "completed"
        assert len(rt.objects) <= rt.max_open
        assert rt.open_runs.watched == {}, f"{len(rt.open_runs.watched)} signatures of finished runs kept"

    runtime.run(main, max_open=16)
