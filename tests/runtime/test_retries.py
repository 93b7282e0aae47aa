"""Retries: backoff on a skipped clock, retry limits, non-retryable errors and types, and step timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flareflow import NonRetryableError, Retry, Run, StepFailed, workflow
from flareflow.engine.events import iso
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock

from .helpers import advance, finished, idle, of_type, turns, types, wait_until


class Flaky:
    """A step function that fails its first ``failures`` calls (``None``: always)."""

    def __init__(self, failures: int | None = None, exc: type[Exception] = RuntimeError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, value: Any = "ok") -> Any:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls} failed")
        return value


def _single_step_registry(fn: Any, retry: Retry | None, *, catch: bool = False) -> Registry:
    reg = Registry()

    @workflow("wf", registry=reg)
    async def wf(run: Run) -> Any:
        try:
            return await run.step("call-api", fn, retry=retry)
        except StepFailed as exc:
            if not catch:
                raise
            return {"gave_up": exc.step, "cause": exc.error["type"]}

    return reg


async def _follow_backoff(rt: LocalRuntime, clock: ManualClock, run_id: str, delays: list[float]) -> None:
    """Check each retry's announced delay and that the next attempt waits exactly that long."""
    for i, expected in enumerate(delays):
        obj = rt.get(run_id)
        retrying = of_type(obj, "step.retrying")
        assert len(retrying) == i + 1, types(obj)
        event = retrying[-1]
        assert event["delay"] == pytest.approx(expected)
        assert event["attempt"] == i + 1
        assert event["retry_at"] == iso(clock.now() + expected)
        assert event["step"] == "call-api#1"
        assert len(of_type(obj, "step.started")) == i + 1
        assert obj.status == "waiting"

        # Just before retry_at: nothing happens.
        await advance(rt, clock, expected - 0.001)
        assert len(of_type(rt.get(run_id), "step.started")) == i + 1, "retried before retry_at"
        # At retry_at: the next attempt runs.
        await advance(rt, clock, 0.001)
        started = of_type(rt.get(run_id), "step.started")
        assert len(started) == i + 2, "retry did not happen once retry_at passed"
        assert started[-1]["attempt"] == i + 2


@pytest.mark.parametrize(
    ("retry", "delays"),
    [
        (Retry(limit=4, delay="30s", backoff="constant"), [30, 30, 30]),
        (Retry(limit=4, delay="10s", backoff="linear"), [10, 20, 30]),
        (Retry(limit=5, delay="10s", backoff="exponential", max_delay="25s"), [10, 20, 25, 25]),
        (Retry(limit=4, delay="1 minute", backoff="exponential", factor=3), [60, 180, 540]),
        (None, [1, 2]),  # the default policy: 3 attempts, 1 s then 2 s
    ],
    ids=["constant", "linear", "exponential-capped", "exponential-factor3", "default"],
)
def test_backoff_schedule_on_a_skipped_clock(runtime, retry, delays):
    flaky = Flaky()
    runtime.registry = _single_step_registry(flaky, retry)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        await _follow_backoff(rt, clock, run_id, delays)
        done = await finished(rt, run_id)
        attempts = len(delays) + 1
        assert flaky.calls == attempts
        assert done.status == "failed"
        failed = of_type(done, "step.failed")
        assert len(failed) == 1 and failed[0]["attempt"] == attempts
        assert failed[0]["error"]["type"] == "RuntimeError"
        assert failed[0]["error"]["message"] == f"attempt {attempts} failed"
        err = done.info["error"]
        assert err["type"] == "StepFailed" and err["step"] == "call-api"
        assert err["cause"]["type"] == "RuntimeError"
        assert types(done)[-2:] == ["step.failed", "run.failed"]
        step = done.describe()["steps"][0]
        assert step["status"] == "failed" and step["attempts"] == attempts

    runtime.run(main)


def test_step_succeeding_on_a_retry_completes_the_run(runtime):
    flaky = Flaky(failures=2)
    runtime.registry = _single_step_registry(flaky, Retry(limit=3, delay="5s", backoff="constant"))
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        await advance(rt, clock, 5)
        await advance(rt, clock, 5)
        done = await finished(rt, run_id)
        assert done.status == "completed"
        assert done.info["output"] == "ok"
        completed = of_type(done, "step.completed")
        assert [c["attempt"] for c in completed] == [3]
        assert flaky.calls == 3
        assert types(done) == [
            "run.started",
            "step.started", "step.retrying",
            "step.started", "step.retrying",
            "step.started", "step.completed",
            "run.completed",
        ]

    runtime.run(main)


def test_step_failed_caught_by_the_workflow_lets_the_run_complete(runtime):
    flaky = Flaky()
    runtime.registry = _single_step_registry(flaky, Retry(limit=2, delay=1, backoff="constant"), catch=True)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        await advance(rt, clock, 1)
        done = await finished(rt, run_id)
        assert done.status == "completed"
        assert done.info["output"] == {"gave_up": "call-api", "cause": "RuntimeError"}
        assert "step.failed" in types(done)
        assert "run.failed" not in types(done)
        assert flaky.calls == 2

    runtime.run(main)


@pytest.mark.parametrize("sync_fn", [True, False], ids=["sync", "async"])
def test_non_retryable_error_fails_at_once(runtime, sync_fn):
    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        raise NonRetryableError("card declined")

    async def refuse_async() -> None:
        await asyncio.sleep(0)
        refuse()

    runtime.registry = _single_step_registry(refuse if sync_fn else refuse_async, Retry(limit=10, delay="1s"))
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        done = await finished(rt, run_id)
        assert calls == [1]
        assert done.status == "failed"
        assert "step.retrying" not in types(done)
        failed = of_type(done, "step.failed")
        assert failed[0]["attempt"] == 1
        error = failed[0]["error"]
        assert (error["type"], error["message"]) == ("NonRetryableError", "card declined")
        assert error["traceback"][-1]["function"] == "refuse"
        assert done.info["error"]["cause"]["message"] == "card declined"
        # Nothing left to wake the run up.
        await advance(rt, clock, 3600)
        assert calls == [1]

    runtime.run(main)


def test_retry_count_survives_a_restart(runtime):
    flaky = Flaky()
    runtime.registry = _single_step_registry(flaky, Retry(limit=3, delay="1 hour", backoff="constant"))
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await idle(rt)
        assert flaky.calls == 1
        rt2 = await runtime.restart(advance=3600)
        await rt2.recover()
        await idle(rt2)
        assert flaky.calls == 2
        assert [e["attempt"] for e in of_type(rt2.get(run_id), "step.started")] == [1, 2]
        await advance(rt2, clock, 3600)
        done = await finished(rt2, run_id)
        assert flaky.calls == 3  # the limit counts attempts made before the restart
        assert done.status == "failed"

    runtime.run(main)


def _timeout_registry(calls: list[int], retry: Retry) -> Registry:
    reg = Registry()

    async def hang() -> str:
        calls.append(1)
        await asyncio.sleep(3600)  # real seconds: only the step timeout can end this
        return "never"

    @workflow("wf", registry=reg)
    async def wf(run: Run) -> Any:
        return await run.step("slow", hang, retry=retry, timeout="10s")

    return reg


def test_step_timeout_counts_as_a_failed_attempt(runtime):
    calls: list[int] = []
    runtime.registry = _timeout_registry(calls, Retry(limit=2, delay="5s", backoff="constant"))
    clock = runtime.clock

    def attempts(rt: LocalRuntime, run_id: str, type_: str) -> int:
        return len(of_type(rt.get(run_id), type_))

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        # Attempt 1 hangs; its timeout timer sits on the manual clock (Execution._invoke uses
        # journal.sleep, i.e. the runtime clock), so the activation stays in flight.
        await wait_until(lambda: calls == [1], "attempt 1")
        await turns()
        assert types(rt.get(run_id))[-1] == "step.started"

        clock.advance(9.999)
        await turns()
        assert attempts(rt, run_id, "step.retrying") == 0, "timed out early"
        clock.advance(0.001)
        await wait_until(lambda: attempts(rt, run_id, "step.retrying") == 1, "the timeout")
        retrying = of_type(rt.get(run_id), "step.retrying")[0]
        assert retrying["error"]["type"] == "StepTimeout"
        assert "slow" in retrying["error"]["message"]
        assert "10s" in retrying["error"]["message"]
        assert retrying["delay"] == 5
        await idle(rt)  # the hung attempt was cancelled: nothing is in flight any more

        clock.advance(5)
        await wait_until(lambda: calls == [1, 1], "attempt 2")
        await turns()
        clock.advance(10)
        done = await finished(rt, run_id)
        assert done.status == "failed"
        failed = of_type(done, "step.failed")
        assert failed[0]["attempt"] == 2
        assert failed[0]["error"]["type"] == "StepTimeout"
        assert done.info["error"]["cause"]["type"] == "StepTimeout"
        assert calls == [1, 1]

    runtime.run(main)


def test_step_finishing_within_its_timeout_completes(runtime):
    async def quick() -> int:
        await asyncio.sleep(0)
        return 42

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.step("quick", quick, timeout="1s")

    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        done = await finished(rt, run_id)
        assert done.info["output"] == 42
        # The timeout timer must not fire later and disturb the finished run.
        n = len(done.events())
        await advance(rt, clock, 5)
        assert len(rt.get(run_id).events()) == n

    runtime.run(main)


class Raising:
    """Raises ``exc`` on every call, counting them."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        raise self.exc


class Misused(TypeError):
    """A subclass of a listed type."""


@pytest.mark.parametrize(("exc", "attempts"), [(TypeError("bad"), 1), (Misused("sub"), 1), (KeyError("k"), 1),
                                               (RuntimeError("flaky"), 3)],
                         ids=["listed", "subclass", "second-listed", "not-listed"])
def test_non_retryable_types_fail_at_once(runtime, exc, attempts):
    flaky = Raising(exc)
    policy = Retry(limit=3, delay="1s", non_retryable=(TypeError, KeyError))

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        try:
            return await run.step("s", flaky, retry=policy)
        except StepFailed as failed:
            return {"failed": failed.error["type"]}

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        for _ in range(attempts - 1):
            await wait_until(lambda: rt.get(run_id).status == "waiting", "a retry")
            await advance(rt, runtime.clock, 10)
        done = await finished(rt, run_id)
        assert flaky.calls == attempts
        assert len(of_type(done, "step.retrying")) == attempts - 1
        assert done.info["output"] == {"failed": type(exc).__name__}

    runtime.run(main)
