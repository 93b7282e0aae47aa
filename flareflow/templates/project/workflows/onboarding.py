"""onboarding: retries, a wait for an external event (with a timeout), a human question and a sleep."""

import asyncio
from typing import Any

from flareflow import NonRetryableError, Retry, Run, WaitTimeout, workflow


async def create_account(customer: dict[str, Any]) -> dict[str, Any]:
    if "@" not in customer.get("email", ""):
        raise NonRetryableError(f"not an email address: {customer.get('email')!r}")
    await asyncio.sleep(0.2)
    return {"id": "acct_" + customer["email"].split("@")[0], "plan": customer.get("plan", "free")}


async def sync_crm(customer: dict[str, Any]) -> str:
    await asyncio.sleep(0.2)
    return "crm-ok"


async def setup_billing(customer: dict[str, Any]) -> str:
    await asyncio.sleep(0.3)
    return f"billing-{customer.get('plan', 'free')}"


async def send_welcome(email: str) -> str:
    await asyncio.sleep(0.1)
    return f"sent to {email}"


@workflow("onboarding")
async def onboarding(run: Run, customer: dict[str, Any]) -> dict[str, Any]:
    """Creates an account, waits for approval, asks before mailing the customer."""
    account = await run.step("create account", create_account, customer,
                             retry=Retry(limit=5, delay="1s", backoff="exponential",
                                         non_retryable=(AttributeError, KeyError, TypeError)),  # bugs fail at once
                             timeout="30s")
    run.state["account"] = account["id"]
    crm, billing = await run.parallel(
        run.step("crm", sync_crm, customer),
        run.step("billing", setup_billing, customer),
    )
    try:
        decision = await run.wait_for_event("approval", timeout="7 days")
    except WaitTimeout:
        return {"status": "expired", "account": account["id"]}
    run.state["approved_by"] = (decision or {}).get("by", "someone")
    send = await run.ask("Send the welcome mail?", schema={"type": "boolean"})
    mail = await run.step("welcome mail", send_welcome, customer["email"]) if send else "skipped"
    await run.sleep("cool-off", "2 seconds")
    return {"status": "onboarded", "account": account["id"], "crm": crm, "billing": billing, "mail": mail}
