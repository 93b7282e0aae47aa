"""Tests of the example workflows with `flareflow.testing`: each run goes through the real local
runtime (a fresh one per run, in a temporary folder), with time skipped and steps mocked where a test
says so. Run them with ``pytest`` (flareflow's pytest plugin runs ``async def`` tests as they are).
"""

import pytest  # noqa: I001 (flareflow is third-party here, first-party in flareflow's own repository)

from flareflow.testing import RunFailed, WorkflowFactory, create_test_workflow
from workflows.hello import hello
from workflows.onboarding import onboarding
from workflows.report import report

CUSTOMER = {"email": "ada@example.com", "plan": "pro"}


async def test_hello_greets_and_retries_the_weather() -> None:
    wf = create_test_workflow(hello)
    wf.disable_sleeps()  # the 1 s pause and the retry's backoff elapse at once
    wf.mock_step_result("fetch weather", {"sky": "grey", "celsius": 9})
    result = await wf.run("Ada")
    assert result["greeting"] == "Hello, Ada!"
    assert result["weather"] == {"sky": "grey", "celsius": 9}
    assert wf.steps == ["greet", "fetch weather", "count letters", "shout"]


async def test_onboarding_after_approval() -> None:
    wf = create_test_workflow(onboarding)
    wf.disable_sleeps()
    wf.send_event("approval", {"by": "test"})  # delivered when the run waits for it
    wf.answer(True)  # "Send the welcome mail?"
    result = await wf.run(CUSTOMER)
    assert result["status"] == "onboarded"
    assert result["mail"] == "sent to ada@example.com"
    assert "welcome mail" in wf.steps


def test_onboarding_expires_after_seven_days_without_approval(flareflow_workflow: WorkflowFactory) -> None:
    wf = flareflow_workflow("onboarding").disable_sleeps()  # the 7-day timeout elapses at once
    assert wf.run_sync(CUSTOMER) == {"status": "expired", "account": "acct_ada"}


async def test_onboarding_fails_at_once_on_a_bad_email() -> None:
    wf = create_test_workflow(onboarding)
    with pytest.raises(RunFailed) as failed:
        await wf.run({"email": "not-an-email"})
    assert failed.value.step == "create account"
    assert failed.value.error["cause"]["type"] == "NonRetryableError"


async def test_report_fails_when_a_source_never_answers() -> None:
    wf = create_test_workflow(report).disable_sleeps()
    wf.mock_step_error("fetch", TimeoutError("slow"), occurrence=2)  # the second source's fetch, every attempt
    wf.answer("yes")
    with pytest.raises(RunFailed) as failed:
        await wf.run(["sales", "support"])
    assert failed.value.step == "fetch"
    assert [e["attempt"] for e in wf.events if e["type"] == "step.failed"] == [4]  # Retry(limit=4)
