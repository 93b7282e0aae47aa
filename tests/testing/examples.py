"""Example workflows the test kit is tested on, in a registry of their own (`REGISTRY`).

``calls`` counts what the real step functions did, so a test can tell a mocked step from a real one.
"""

from __future__ import annotations

from typing import Any

from flareflow import NonRetryableError, Registry, Retry, Run, WaitTimeout, workflow

REGISTRY = Registry()
calls: list[str] = []


def charge(order: dict[str, Any]) -> dict[str, Any]:
    calls.append("charge")
    return {"success": True, "charge_id": "ch_real"}


async def send_mail(to: str) -> str:
    calls.append("mail")
    return f"sent to {to}"


def double(n: int) -> int:
    calls.append(f"double {n}")
    return n * 2


@workflow("shop", registry=REGISTRY)
async def shop(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    """Charges, waits for approval (a day at most), asks, sleeps a week, mails."""
    payment = await run.step("Payment.process", charge, order, retry=Retry(limit=4, delay="10s"))
    try:
        approval = await run.wait_for_event("approval", timeout="1 day")
    except WaitTimeout:
        return {"status": "expired"}
    ship = await run.ask("Ship it?", schema={"type": "boolean"})
    await run.sleep("cool-off", "7 days")
    try:
        mail = await run.step("Email.send", send_mail, order["email"],
                              retry=Retry(limit=3, delay="1 hour", backoff="exponential"))
    except Exception as exc:  # a failed mail does not fail the order
        mail = f"not sent: {exc}"
    return {"status": "confirmed" if payment["success"] and ship else "held", "by": approval["by"],
            "mail": mail}


@workflow("loop", registry=REGISTRY)
async def loop(run: Run, n: int) -> list[int]:
    """The same step name called ``n`` times; ``run.state["last"]`` follows the last result."""
    out = []
    for i in range(n):
        out.append(await run.step("double", double, i))
        run.state["last"] = out[-1]
    return out


@workflow("fanout", registry=REGISTRY)
async def fanout(run: Run) -> list[Any]:
    """Parallel branches that call steps of the same name."""

    async def branch(tag: str) -> Any:
        return await run.step("double", double, len(tag))

    return await run.parallel(branch("a"), branch("bbb"), run.step("tail", double, 100))


@workflow("sleeper", registry=REGISTRY)
async def sleeper(run: Run) -> str:
    """Sleeps seven days between two steps."""
    await run.step("before", double, 1)
    await run.sleep("week", "7 days")
    await run.step("after", double, 2)
    return "rested"


@workflow("plain", registry=REGISTRY)
async def plain(run: Run) -> str:
    """Two steps, no waits: the baseline of the benchmark."""
    await run.step("one", double, 1)
    await run.step("two", double, 2)
    return "done"


@workflow("questions", registry=REGISTRY)
async def questions(run: Run) -> list[Any]:
    """Two questions in a row, the second checked against an enum."""
    first = await run.ask("Name?", schema={"type": "string"})
    second = await run.ask("Colour?", schema={"type": "string", "enum": ["red", "blue"]})
    return [first, second]


@workflow("events", registry=REGISTRY)
async def events(run: Run) -> list[Any]:
    """Two waits for the same event type, then one for another."""
    return [await run.wait_for_event("first", type="tick"), await run.wait_for_event("second", type="tick"),
            await run.wait_for_event("done")]


@workflow("broken", registry=REGISTRY)
async def broken(run: Run, fatal: bool = False) -> str:
    """Fails in its own body, or in a step that raises NonRetryableError."""
    if fatal:
        await run.step("fatal", _fatal)
    raise ValueError("the body gave up")


def _fatal() -> None:
    raise NonRetryableError("no point retrying")


def lookup(sku: str) -> dict[str, Any]:
    """A graph's ``python`` task (``tests.testing.examples:lookup``)."""
    calls.append(f"lookup {sku}")
    return {"sku": sku, "stock": 0}


def notify(message: str) -> str:
    """A graph's ``python`` task (``tests.testing.examples:notify``)."""
    calls.append(f"notify {message}")
    return f"notified: {message}"
