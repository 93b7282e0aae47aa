"""`flareflow.testing` on the issue's domain example: mocks by domain path (``"Payment.process"``),
a mocked error on every attempt of a method with its own retry policy, ``steps`` as paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flareflow import Domain, Method, Registry, Retry, Run, StepFailed, workflow
from flareflow.engine.domains import default_domains
from flareflow.testing import RunFailed, create_test_workflow

REGISTRY = Registry()
NAMES = ("Inventory", "Payment", "Email")
CALLS: list[str] = []


async def check(product: dict[str, Any]) -> dict[str, Any]:
    CALLS.append("check")
    return {"sku": product["sku"], "in_stock": True}


async def reserve(product: dict[str, Any], *, quantity: int) -> dict[str, Any]:
    CALLS.append("reserve")
    return {"sku": product["sku"], "held": quantity}


async def process(order: dict[str, Any]) -> dict[str, Any]:
    CALLS.append("process")
    raise RuntimeError("the real payment provider must not be called from a test")


async def send(order: dict[str, Any]) -> str:
    CALLS.append("send")
    return "sent"


@pytest.fixture(autouse=True)
def domains() -> Iterator[None]:
    """The example's domains for one test (domains live in one process-wide registry: others' are
    put back afterwards)."""
    saved = {name: default_domains.get(name) for name in NAMES}
    for name in NAMES:
        default_domains.forget(name)
    Domain("Inventory", check=check,
           reserve=Method(reserve, retry=Retry(limit=10, delay="2s", backoff="exponential"), timeout="30s"))
    Domain("Payment", process=process)
    Domain("Email", send=Method(send, retry=Retry(limit=5, delay="1 minute", backoff="exponential")))
    CALLS.clear()
    yield
    for name, domain in saved.items():
        default_domains.forget(name)
        if domain is not None:
            default_domains.register(domain)


@workflow("order", registry=REGISTRY)
async def order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    stock = await run.Inventory(order["product"]).check()
    held = await run.Inventory(order["product"]).reserve(quantity=order["quantity"])
    approval = await run.wait_for_event("approval", timeout="7 days")
    confirm = await run.ask("Confirm the order?", schema={"type": "boolean"})
    payment = await run.Payment(order).process()
    try:
        mail = await run.Email(order).send()
    except StepFailed:
        mail = "not sent"
    await run.sleep("settle", "7 days")
    ok = stock["in_stock"] and held["held"] == order["quantity"] and payment["success"] and confirm
    return {"status": "confirmed" if ok else "declined", "by": approval["by"], "mail": mail,
            "charge": payment.get("charge_id")}


async def test_the_issue_example_on_a_domain_workflow() -> None:
    wf = create_test_workflow(order, registry=REGISTRY)
    wf.disable_sleeps()
    wf.mock_step_result("Payment.process", {"success": True, "charge_id": "ch_test"})
    wf.mock_step_error("Email.send", RuntimeError("smtp down"))
    wf.send_event("approval", {"by": "test"})
    wf.answer(True)
    result = await wf.run({"product": {"sku": "ABC"}, "quantity": 1})
    assert result == {"status": "confirmed", "by": "test", "mail": "not sent", "charge": "ch_test"}
    assert "Inventory.check" in wf.steps
    assert wf.steps == ["Inventory.check", "Inventory.reserve", "Payment.process", "Email.send"]
    assert CALLS == ["check", "reserve"]  # the mocked methods never ran
    sends = [e for e in wf.events if e["type"] == "step.started" and e["name"] == "Email.send"]
    assert [e["attempt"] for e in sends] == [1, 2, 3, 4, 5]  # the method's own Retry(limit=5)
    assert all(e["hash"] for e in sends)  # still domain steps: hashed keys, paths as names


def test_a_mocked_domain_method_failing_fails_the_run_with_its_path() -> None:
    wf = create_test_workflow("order", registry=REGISTRY).disable_sleeps()
    wf.mock_step_error("Inventory.check", ConnectionError("warehouse offline"))
    with pytest.raises(RunFailed) as failed:
        wf.run_sync({"product": {"sku": "ABC"}, "quantity": 1})
    assert failed.value.step == "Inventory.check"
    assert failed.value.error["cause"]["message"] == "warehouse offline"
    assert wf.steps == ["Inventory.check"]
