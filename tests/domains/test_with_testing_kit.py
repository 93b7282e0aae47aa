"""Domain calls under `flareflow.testing`: mocks match a call by its path (every occurrence or one), and
``wf.steps`` lists paths -- the issue's test example, on a domain workflow."""

from __future__ import annotations

from typing import Any

from flareflow import Domain, Run, workflow
from flareflow.engine.registry import Registry
from flareflow.testing import create_test_workflow

REGISTRY = Registry()
CHARGED: list[Any] = []


def charge(payment: dict[str, Any]) -> dict[str, Any]:
    CHARGED.append(payment)
    raise RuntimeError("the test must never reach the real payment service")


async def check(product: dict[str, Any]) -> dict[str, Any]:
    return {"sku": product["sku"], "in_stock": True}


Payment = Domain("KitPayment", process=charge)
Stock = Domain("KitInventory", check=check)


@workflow("kit-order", registry=REGISTRY)
async def kit_order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    stock = await run.KitInventory(order["product"]).check()
    await run.sleep("cool-off", "7 days")
    paid = await run.KitPayment({"amount": 10}).process()
    return {"status": "confirmed" if paid["success"] and stock["in_stock"] else "declined"}


def test_mocks_match_domain_calls_by_path_and_steps_lists_paths():
    wf = create_test_workflow(kit_order, registry=REGISTRY)
    wf.disable_sleeps()
    wf.mock_step_result("KitPayment.process", {"success": True, "charge_id": "ch_test"})
    result = wf.run_sync({"product": {"sku": "ABC"}})
    assert result == {"status": "confirmed"}
    assert CHARGED == []
    assert "KitInventory.check" in wf.steps and "KitPayment.process" in wf.steps
