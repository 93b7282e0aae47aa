"""Hostile step code on the embedded runtime, precisely (manual clock, in-process).

* A step's BaseException is a failure of that step; the host's own cancellation is not.
* Sync steps run in the runtime's step threads (``step_threads``, 0: inline on the loop, as on the
  Worker); ``timeout=`` abandons a blocked thread at the deadline and its late result is dropped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from flareflow import Retry, Run, StepFailed, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

from .helpers import advance, finished, idle, of_type, turns, types, wait_until


class Custom(BaseException):
    pass


def _one_step(fn: Any, **options: Any) -> Registry:
    reg = Registry()

    @workflow("wf", registry=reg)
    async def wf(run: Run) -> Any:
        return await run.step("s", fn, **options)

    return reg


async def _raise_async(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


@pytest.mark.parametrize("threads", [8, 0], ids=["threads", "inline"])
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt(), GeneratorExit(), Custom("c"),
                                 asyncio.CancelledError()], ids=lambda e: type(e).__name__)
def test_base_exception_from_a_step_is_a_step_failure(runtime, exc, kind, threads):
    exc.with_traceback(None)  # the instance is shared by the parametrised cases: no frames of earlier raises
    def sync_raise() -> None:
        raise exc

    async def async_raise() -> None:
        await _raise_async(exc)

    fn = sync_raise if kind == "sync" else async_raise
    runtime.registry = _one_step(fn, retry=Retry(limit=2, delay="1s"))
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: "step.retrying" in types(rt.get(run_id)), "attempt 1 to fail")
        await advance(rt, clock, 1)
        done = await finished(rt, run_id)
        assert done.status == "failed"
        errors = [e["error"] for e in of_type(done, "step.retrying") + of_type(done, "step.failed")]
        expected = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        assert [{"type": e["type"], "message": e["message"]} for e in errors] == [expected, expected]
        innermost = "sync_raise" if kind == "sync" else "_raise_async"
        assert all(e["traceback"][-1]["function"] == innermost for e in errors), errors
        assert all(f["file"] == "tests/runtime/test_hostile.py" for e in errors for f in e["traceback"]), errors
        assert done.describe()["steps"][0]["status"] == "failed"

    runtime.run(main, step_threads=threads)


def test_host_cancellation_is_not_a_step_failure(runtime):
    started = threading.Event()
    release = threading.Event()

    def blocks() -> str:
        started.set()
        release.wait(10)
        return "late"

    async def hangs() -> str:
        await asyncio.sleep(3600)
        return "never"


    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.parallel(run.step("thread", blocks), run.step("loop", hangs))

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(started.is_set, "the thread step to start")
        await rt.cancel(run_id)
        await idle(rt)
        release.set()
        await asyncio.sleep(0.05)
        done = rt.get(run_id)
        assert done.status == "cancelled"
        assert not of_type(done, "step.failed") and not of_type(done, "step.retrying"), types(done)
        assert not of_type(done, "step.completed")

    runtime.run(main)


def test_runtime_close_abandons_a_blocked_thread_and_the_run_resumes(runtime):
    calls: list[int] = []
    release = threading.Event()

    def blocks() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
            return "from the old process"
        return "resumed"

    runtime.registry = _one_step(blocks)

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: calls == [1], "the step to start")
        t0 = time.monotonic()
        await rt.close()  # the host's own shutdown: the thread is abandoned, not waited for
        assert time.monotonic() - t0 < 1.0
        release.set()
        await asyncio.sleep(0.05)
        again = await runtime.restart()
        obj = again.get(run_id)
        assert not of_type(obj, "step.failed") and not of_type(obj, "step.retrying"), types(obj)
        await again.recover()
        done = await finished(again, run_id)
        assert done.status == "completed" and done.info["output"] == "resumed"
        assert [e["attempt"] for e in of_type(done, "step.completed")] == [2]

    runtime.run(main)


def test_sync_steps_run_in_step_threads_async_steps_on_the_loop(runtime):
    seen: dict[str, int] = {}

    def sync_step() -> str:
        seen["sync"] = threading.get_ident()
        return "s"

    async def async_step() -> str:
        seen["async"] = threading.get_ident()
        return "a"


    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return [await run.step("s", sync_step), await run.step("a", async_step)]

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        assert done.info["output"] == ["s", "a"]

    runtime.run(main)
    assert seen["async"] == threading.get_ident()
    assert seen["sync"] != threading.get_ident()


def test_blocked_sync_step_times_out_at_the_deadline_and_its_late_result_is_dropped(runtime):
    release = threading.Event()
    calls: list[int] = []

    def blocks_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
            return "late"
        return "second"

    runtime.registry = _one_step(blocks_once, timeout="10s", retry=Retry(limit=3, delay="5s"))
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: calls == [1], "attempt 1")
        clock.advance(9.999)
        await turns()
        assert "step.retrying" not in types(rt.get(run_id)), "timed out early"
        clock.advance(0.001)
        await wait_until(lambda: "step.retrying" in types(rt.get(run_id)), "the timeout")
        assert of_type(rt.get(run_id), "step.retrying")[0]["error"]["type"] == "StepTimeout"
        release.set()  # attempt 1 returns now, long after its deadline
        await asyncio.sleep(0.05)
        await idle(rt)
        assert "step.completed" not in types(rt.get(run_id))
        await advance(rt, clock, 5)
        done = await finished(rt, run_id)
        assert done.info["output"] == "second"
        assert [(e["attempt"], e["result"]) for e in of_type(done, "step.completed")] == [(2, "second")]

    runtime.run(main)


def test_abandoned_thread_frees_its_slot(runtime):
    """With one step thread, a step stuck forever in it does not starve every later sync step."""
    release = threading.Event()

    def stuck() -> str:
        release.wait(10)
        return "late"

    def quick() -> str:
        return "quick"

    @workflow("stuck", registry=runtime.registry)
    async def stuck_flow(run: Run) -> Any:
        try:
            return await run.step("stuck", stuck, timeout="1s", retry=Retry(limit=1))
        except StepFailed:
            return await run.step("after", quick, timeout="1s", retry=Retry(limit=1))

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("stuck")).run_id
        await wait_until(lambda: "step.started" in types(rt.get(run_id)), "the stuck step")
        await turns()
        clock.advance(1)
        done = await finished(rt, run_id)
        assert done.info["output"] == "quick", types(done)

    try:
        runtime.run(main, step_threads=1)
    finally:
        release.set()


def test_step_threads_bounds_concurrency(runtime):
    lock = threading.Lock()
    running = [0, 0]  # now, max

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i


    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.parallel(*(run.step(f"w{i}", work, i) for i in range(6)))

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        assert done.info["output"] == list(range(6))

    runtime.run(main, step_threads=2)
    assert running[1] == 2


def test_inline_sync_step_that_overran_its_timeout_is_a_timeout(runtime):
    """Where sync steps run inline (step_threads=0, the Worker), a result that came after the
    deadline is dropped too: the attempt fails with the step timeout once it returns."""
    clock = runtime.clock
    calls: list[int] = []

    def slow_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            clock.advance(11)  # "time passes" while the step blocks the loop
            return "late"
        return "second"

    runtime.registry = _one_step(slow_once, timeout="10s", retry=Retry(limit=2, delay="1s"))

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: "step.retrying" in types(rt.get(run_id)), "attempt 1")
        assert of_type(rt.get(run_id), "step.retrying")[0]["error"]["type"] == "StepTimeout"
        await advance(rt, clock, 1)
        done = await finished(rt, run_id)
        assert [(e["attempt"], e["result"]) for e in of_type(done, "step.completed")] == [(2, "second")]

    runtime.run(main, step_threads=0)


def test_system_exit_in_a_parallel_helper_fails_the_run(runtime):
    async def helper(run: Run) -> None:
        await run.step("ok", lambda: 1)
        raise SystemExit(5)

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.parallel(helper(run), run.step("other", lambda: 2))

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        assert done.status == "failed"
        error = done.info["error"]
        assert (error["type"], error["message"]) == ("SystemExit", "5")
        assert [f["function"] for f in error["traceback"]] == ["wf", "helper"]

    runtime.run(main)
