"""`flareflow.testing` on the example workflows (`examples.py`): mocks, errors and their retries,
skipped sleeps and timeouts, events, answers, ``steps``, occurrences, failures, ``run_sync``,
``advance``, and isolation. Async tests run through the kit's own pytest plugin (an entry point)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from flareflow import (
    DurationError,
    FlareflowError,
    InvalidInput,
    NonRetryableError,
    Registry,
    WorkflowNotFound,
    workflow,
)
from flareflow.testing import RunFailed, RunStuck, TestWorkflow, UnusedMockWarning, create_test_workflow

from . import examples
from .examples import REGISTRY

DAY = 86400.0
ORDER = {"sku": "ABC", "email": "ada@example.com"}


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real calls start uncounted; the kit's temporary state directories go under ``tmp_path/tmp``."""
    examples.calls.clear()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def kit(name: str) -> TestWorkflow:
    return create_test_workflow(name, registry=REGISTRY)


def types(wf: TestWorkflow) -> list[str]:
    return [e["type"] for e in wf.events]


def of(wf: TestWorkflow, type_: str, name: str | None = None) -> list[dict[str, Any]]:
    return [e for e in wf.events if e["type"] == type_ and (name is None or e.get("name") == name)]


# -- the issue's example, on a plain run.step workflow ------------------------------------------
async def test_the_issue_example_confirms_an_order_with_every_wait_skipped() -> None:
    wf = create_test_workflow(examples.shop, registry=REGISTRY)
    wf.disable_sleeps()
    wf.mock_step_result("Payment.process", {"success": True, "charge_id": "ch_test"})
    wf.mock_step_error("Email.send", RuntimeError("smtp down"))
    wf.send_event("approval", {"by": "test"})
    wf.answer(True)
    started = time.perf_counter()
    result = await wf.run(ORDER)
    elapsed = time.perf_counter() - started
    assert result["status"] == "confirmed"
    assert result["by"] == "test"
    assert result["mail"].startswith("not sent: step 'Email.send' failed: RuntimeError: smtp down")
    assert wf.steps == ["Payment.process", "Email.send"]
    assert examples.calls == []  # neither real function ran
    assert elapsed < 5, f"a week of sleeps and three hours of backoff took {elapsed:.2f}s"  # generous bound
    assert wf.now - wf.start_time >= 7 * DAY + 3 * 3600  # the clock did move: a week, backoffs 1 h + 2 h
    assert wf.status == "completed" and wf.output == result and wf.unused_mocks == []


async def test_a_mocked_step_is_still_a_recorded_step() -> None:
    wf = kit("shop").disable_sleeps().send_event("approval", {"by": "x"}).answer(False)
    wf.mock_step_result("Payment.process", {"success": True, "charge_id": "ch_test"})
    await wf.run(ORDER)
    [done] = of(wf, "step.completed", "Payment.process")
    assert done["result"] == {"success": True, "charge_id": "ch_test"} and done["attempt"] == 1
    assert [e["seq"] for e in wf.events] == list(range(1, len(wf.events) + 1))
    assert {e["run_id"] for e in wf.events} == {wf.run_id}
    assert examples.calls == ["mail"]  # Email.send was not mocked: its real function ran


async def test_a_mocked_error_plays_out_the_steps_retry_policy_then_fails_it() -> None:
    wf = kit("shop").disable_sleeps().mock_step_error("Payment.process", ConnectionError("card network down"))
    with pytest.raises(RunFailed) as failed:
        await wf.run(ORDER)
    assert [e["attempt"] for e in of(wf, "step.started")] == [1, 2, 3, 4]  # Retry(limit=4)
    assert len(of(wf, "step.retrying")) == 3 and len(of(wf, "step.failed")) == 1
    error = failed.value.error
    assert error["type"] == "StepFailed" and error["step"] == "Payment.process"
    assert error["cause"]["type"] == "ConnectionError" and error["cause"]["message"] == "card network down"
    assert failed.value.step == "Payment.process" and failed.value.run_id == wf.run_id
    assert failed.value.events == wf.events and types(wf)[-1] == "run.failed"
    assert isinstance(failed.value, FlareflowError)
    assert "card network down" in str(failed.value) and wf.status == "failed"


async def test_a_non_retryable_mocked_error_fails_at_the_first_attempt() -> None:
    wf = kit("shop").mock_step_error("Payment.process", NonRetryableError("card refused"))
    with pytest.raises(RunFailed, match="card refused"):
        await wf.run(ORDER)  # no disable_sleeps needed: nothing waits
    assert len(of(wf, "step.started")) == 1


def test_an_exception_class_is_raised_as_a_fresh_instance() -> None:
    wf = kit("broken").mock_step_error("fatal", NonRetryableError)
    with pytest.raises(RunFailed) as failed:
        wf.run_sync(True)
    assert failed.value.error["cause"]["type"] == "NonRetryableError"


def test_a_mock_must_be_json_and_name_a_step() -> None:
    wf = kit("shop")
    with pytest.raises(InvalidInput, match=r"mocked result of step 'Payment\.process' is not JSON"):
        wf.mock_step_result("Payment.process", {1, 2})
    with pytest.raises(InvalidInput, match="occurrence counts calls from 1"):
        wf.mock_step_result("Payment.process", {}, occurrence=0)
    with pytest.raises(TypeError, match="takes an exception"):
        wf.mock_step_error("Payment.process", "boom")  # type: ignore[arg-type]


def test_a_misspelt_mock_is_listed_as_unused() -> None:
    wf = kit("plain").mock_step_result("on", 1).mock_step_result("two", 2, occurrence=1)
    with pytest.warns(UnusedMockWarning, match='did you mean "one"'):
        assert wf.run_sync() == "done"
    assert wf.unused_mocks == ["on"]


# -- occurrences -------------------------------------------------------------------------------
def test_occurrence_mocks_only_that_call_and_a_general_mock_the_others() -> None:
    wf = kit("loop").mock_step_result("double", -1, occurrence=2)
    assert wf.run_sync(4) == [0, -1, 4, 6]
    assert examples.calls == ["double 0", "double 2", "double 3"]
    assert wf.state == {"last": 6}
    wf.mock_step_result("double", 7)
    assert wf.run_sync(3) == [7, -1, 7]  # the specific mock wins over the one for every call


def test_occurrence_of_a_mocked_error_counts_calls_not_attempts() -> None:
    wf = kit("loop").disable_sleeps().mock_step_error("double", RuntimeError("second call only"), occurrence=2)
    with pytest.raises(RunFailed):
        wf.run_sync(3)
    started = [(e["step"], e["attempt"]) for e in of(wf, "step.started")]
    assert started == [("double#1", 1), ("double#2", 1), ("double#2", 2), ("double#2", 3)]


def test_occurrences_in_parallel_branches_follow_call_order() -> None:
    wf = kit("fanout").mock_step_result("double", "second", occurrence=2)
    assert wf.run_sync() == [2, "second", 200]
    assert wf.steps == ["double", "double", "tail"]


# -- time --------------------------------------------------------------------------------------
def test_a_week_long_sleep_finishes_at_once_with_sleeps_disabled() -> None:
    wf = kit("sleeper").disable_sleeps()
    started = time.perf_counter()
    assert wf.run_sync() == "rested"
    assert time.perf_counter() - started < 5  # generous; benchmarks/testing_kit.py has the figure
    assert wf.now - wf.start_time == 7 * DAY
    [waiting] = of(wf, "run.waiting")
    assert waiting["reason"] == "sleep" and waiting["until"] == "2026-01-08T00:00:00.000Z"


def test_without_disable_sleeps_a_sleeping_run_is_stuck_and_says_how_to_go_on() -> None:
    wf = kit("sleeper")
    with pytest.raises(RunStuck) as stuck:
        wf.run_sync()
    message = str(stuck.value)
    assert "sleep 'week' until 2026-01-08T00:00:00.000Z" in message
    assert "wf.disable_sleeps() or wf.advance(...)" in message
    assert [w["kind"] for w in stuck.value.waiting] == ["sleep"]
    assert wf.steps == ["before"] and wf.status == "waiting"


def test_advance_moves_the_clock_by_hand_each_time_the_run_is_stuck() -> None:
    wf = kit("sleeper").advance("6 days")
    with pytest.raises(RunStuck, match=r"clock at 2026-01-07T00:00:00\.000Z"):
        wf.run_sync()  # six days are not enough
    wf.advance("6 days").advance("1 day").advance("1 hour")  # spent in order while the run is stuck
    assert wf.run_sync() == "rested"
    assert wf.now - wf.start_time == 7 * DAY
    wf.advance("7 days")  # the unspent hour comes first, then a week
    assert wf.run_sync() == "rested"
    assert wf.now - wf.start_time == 7 * DAY + 3600
    with pytest.raises(RunStuck):
        wf.run_sync()  # nothing left


def test_advance_refuses_going_back() -> None:
    with pytest.raises(DurationError):
        kit("sleeper").advance(-1)


def test_disable_sleeps_makes_a_wait_time_out_when_no_event_comes() -> None:
    wf = kit("shop").disable_sleeps().mock_step_result("Payment.process", {"success": True})
    assert wf.run_sync(ORDER) == {"status": "expired"}
    [failed] = of(wf, "step.failed")
    assert failed["name"] == "approval" and failed["error"]["type"] == "WaitTimeout"
    assert wf.now - wf.start_time == DAY


# -- events and answers ------------------------------------------------------------------------
async def test_events_are_delivered_when_the_run_waits_for_their_type_in_order() -> None:
    wf = kit("events").send_event("done", "last").send_event("tick", 1).send_event("tick", 2)
    assert await wf.run() == [1, 2, "last"]
    received = [e for e in wf.events if e["type"] == "event.received"]
    assert [e["payload"] for e in received] == [1, 2, "last"]  # each when its wait opened, not before
    assert types(wf).index("event.received") > types(wf).index("run.waiting")


async def test_a_run_waiting_for_an_event_the_test_never_sends_is_stuck() -> None:
    wf = kit("events").send_event("tick", 1).send_event("tock", 2)
    with pytest.raises(RunStuck) as stuck:
        await wf.run()
    message = str(stuck.value)
    assert "event 'second' (event type 'tick'), no timeout" in message
    assert "wf.send_event(TYPE, payload)" in message and "queued events nobody waits for: tock" in message
    assert "disable_sleeps" not in message  # no timer would end this wait


async def test_answers_go_to_the_questions_in_order_and_are_checked_against_their_schema() -> None:
    wf = kit("questions").answer("Ada").answer("blue")
    assert await wf.run() == ["Ada", "blue"]
    assert [e["prompt"] for e in of(wf, "input.requested")] == ["Name?", "Colour?"]
    wrong = kit("questions").answer("Ada").answer("green")
    with pytest.raises(InvalidInput, match="answer rejected"):
        await wrong.run()


async def test_an_unanswered_question_is_stuck_naming_its_prompt() -> None:
    with pytest.raises(RunStuck, match=r"question 'Name\?'.*wf.answer\(value\)"):
        await kit("questions").run()


# -- failures ----------------------------------------------------------------------------------
def test_a_failure_in_the_workflow_body_raises_run_failed_with_the_wire_error() -> None:
    with pytest.raises(RunFailed) as failed:
        kit("broken").run_sync()
    error = failed.value.error
    assert error["type"] == "ValueError" and error["message"] == "the body gave up"
    assert error["traceback"] and failed.value.step is None
    assert str(failed.value) == "run of 'broken' failed: ValueError: the body gave up"


def test_bad_input_is_refused_before_any_run() -> None:
    with pytest.raises(InvalidInput):
        kit("loop").run_sync({"not": "json", "x": object()})


async def test_run_sync_refuses_to_nest_in_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match=r"await wf\.run"):
        kit("plain").run_sync()


async def test_a_hanging_step_is_cut_by_the_real_time_bound() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def hangs(run: Any) -> None:
        await run.step("forever", forever)

    with pytest.raises(TimeoutError, match=r"still going after 0.3s of real time .*step.started"):
        await create_test_workflow(hangs).run(timeout=0.3)


# -- finding the workflow; isolation -----------------------------------------------------------
def test_a_workflow_is_found_by_function_name_or_definition_and_an_unknown_name_is_an_error() -> None:
    assert create_test_workflow(examples.plain, registry=REGISTRY).name == "plain"
    assert create_test_workflow(REGISTRY.get("plain")).run_sync() == "done"
    with pytest.raises(WorkflowNotFound, match=r"unknown workflow 'nope'.*once its module is imported"):
        create_test_workflow("nope", registry=REGISTRY)


def test_a_plain_async_def_is_tested_under_its_own_name() -> None:
    async def adhoc(run: Any, n: int) -> int:
        return int(await run.step("double", examples.double, n))

    wf = create_test_workflow(adhoc)
    assert wf.name == "adhoc" and wf.run_sync(4) == 8


def test_each_run_has_a_fresh_runtime_and_leaves_nothing_behind(tmp_path: Path) -> None:
    wf = kit("plain")
    wf.run_sync()
    first, first_events = wf.run_id, wf.events
    wf.run_sync()
    assert wf.run_id != first
    assert [e["seq"] for e in wf.events] == [e["seq"] for e in first_events]  # a log of its own from 1
    assert {e["run_id"] for e in wf.events} == {wf.run_id}
    assert list((tmp_path / "tmp").iterdir()) == []  # every state directory removed
    with pytest.raises(RunStuck):
        kit("sleeper").run_sync()
    assert list((tmp_path / "tmp").iterdir()) == []  # also when the run did not finish


def test_two_test_workflows_of_the_same_name_do_not_clash() -> None:
    one, two = Registry(), Registry()

    @workflow("same", registry=one)
    async def first(run: Any) -> str:
        return "first code"

    @workflow("same", registry=two)
    async def second(run: Any) -> str:
        return "second code"

    assert create_test_workflow(first, registry=one).run_sync() == "first code"
    assert create_test_workflow(second, registry=two).run_sync() == "second code"
