"""Tracebacks of failed steps and runs on the embedded runtime (issue #11 item 4).

Tried: a failing step's error naming this file, its line and its function, in step.retrying,
step.failed, run.failed and the stored step (sync in a step thread, sync inline, async), with no
flareflow, asyncio or threading frames; the run's StepFailed naming the workflow's line and carrying
the step's traceback as its cause; deep recursion capped to the innermost frames with a count.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from flareflow import Retry, Run, workflow
from flareflow.engine.tracebacks import MAX_FRAMES
from flareflow.local import LocalRuntime

from .helpers import advance, finished, of_type, wait_until

HERE = "tests/runtime/test_tracebacks.py"


def _line_of(fn: Any, text: str) -> int:
    """The line number of the first line of ``fn``'s source containing ``text``."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def explode(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative: {value}")  # the raise the tracebacks must name
    return value


def charge(value: int) -> int:
    return explode(value) + 1


async def charge_async(value: int) -> int:
    await asyncio.sleep(0)
    return charge(value)


@pytest.mark.parametrize(("fn", "threads"), [(charge, 8), (charge, 0), (charge_async, 8)],
                         ids=["sync-threads", "sync-inline", "async"])
def test_a_failing_step_names_the_users_file_line_and_function(runtime, fn, threads):
    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.step("charge", fn, -1, retry=Retry(limit=2, delay="1s"))

    raise_line = _line_of(explode, "raise ValueError")
    call_line = _line_of(wf, 'run.step("charge"')

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: bool(of_type(rt.get(run_id), "step.retrying")), "the first failure")
        await advance(rt, runtime.clock, 1)
        done = await finished(rt, run_id)
        errors = [of_type(done, "step.retrying")[0]["error"], of_type(done, "step.failed")[0]["error"],
                  done.describe()["steps"][0]["error"]]
        for error in errors:
            assert (error["type"], error["message"]) == ("ValueError", "negative: -1")
            frames = error["traceback"]
            assert frames[-1] == {"file": HERE, "line": raise_line, "function": "explode"}, frames
            assert [f["function"] for f in frames][-2:] == ["charge", "explode"], frames
            assert all(f["file"] == HERE for f in frames), frames  # no flareflow, asyncio or threading frames
            assert "traceback_truncated" not in error
        run_error = done.info["error"]
        assert run_error["type"] == "StepFailed"
        assert run_error["traceback"] == [{"file": HERE, "line": call_line, "function": "wf"}]
        assert run_error["cause"]["traceback"] == errors[-1]["traceback"]
        assert of_type(done, "run.failed")[0]["error"] == run_error

    runtime.run(main, step_threads=threads)


def recurse(n: int) -> int:
    if n == 0:
        raise RecursionError("bottom")
    return recurse(n - 1)


def test_a_deep_traceback_keeps_the_innermost_frames_and_counts_the_rest(runtime):
    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.step("deep", recurse, 50, retry=Retry(limit=1))

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        error = of_type(done, "step.failed")[0]["error"]
        assert len(error["traceback"]) == MAX_FRAMES
        assert error["traceback_truncated"] == 51 - MAX_FRAMES
        assert error["traceback"][-1]["line"] == _line_of(recurse, "raise RecursionError")

    runtime.run(main)
