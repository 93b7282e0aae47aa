"""``mypy --strict`` accepts user code written like the issue's domain example (flareflow ships ``py.typed``),
and still rejects a wrongly typed policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_CODE = '''\
from typing import Any

from flareflow import Domain, Method, Retry, Run, StepContext, workflow


async def check(product: dict[str, Any]) -> dict[str, Any]:
    return {"sku": product["sku"], "in_stock": True}


async def reserve(product: dict[str, Any], *, quantity: int, ctx: StepContext) -> dict[str, Any]:
    ctx.log.info("attempt %d", ctx.attempt)
    return {"held": quantity}


Inventory = Domain("Inventory", check=check,
                   reserve=Method(reserve, retry=Retry(limit=10, delay="2s", backoff="exponential"),
                                  timeout="30s"))


@workflow("order")
async def order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    stock = await run.Inventory(order["product"]).check()
    held = await run.Inventory(order["product"]).reserve(quantity=order["quantity"])
    both = await run.parallel(run.Inventory(order["product"]).check(), run.domain("Inventory")({}).check())
    piped = await run.Inventory(order["product"]).check().reserve(quantity=1)
    return {"stock": stock, "held": held, "both": both, "piped": piped}
'''

WRONG = USER_CODE.replace('retry=Retry(limit=10, delay="2s", backoff="exponential")', "retry=10")


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "order_flow.py").write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"),
                           "order_flow.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_mypy_strict_accepts_the_domain_example(tmp_path):
    result = mypy(tmp_path, USER_CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_rejects_a_retry_that_is_not_a_policy(tmp_path):
    result = mypy(tmp_path, WRONG)
    assert result.returncode == 1 and 'Argument "retry" to "Method"' in result.stdout, result.stdout
