"""A domain call whose context or arguments changed in flight has the same path but another key: both
``flareflow check`` and the hold say so (was: "recorded step 'Inventory.reserve', the code now calls
step 'Inventory.reserve'", which reads like no change at all). Real processes."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import Live, describe, ff
from tests.cli.versions import release, write_shop

CODE = '''\
from flareflow import Domain, Run, workflow


def reserve(product: dict, *, quantity: int) -> dict:
    return {{"sku": product["sku"], "held": quantity}}


Inventory = Domain("Inventory", reserve=reserve)


@workflow("order")
async def order(run: Run, inp=None):
    held = await run.Inventory({{"sku": "A"}}).reserve(quantity={quantity})
    await run.sleep("nap", "2s")
    return held
'''

WHY = "the same path with another context or arguments"


def test_a_changed_domain_argument_is_named_as_such(tmp_path: Path) -> None:
    root = write_shop(tmp_path / "shop", CODE.format(quantity=1))
    with Live("run", "order", "--json", cwd=root) as live:
        started = live.wait_event(lambda e: e["type"] == "run.started", what="run.started")
        live.wait_event(lambda e: e["type"] == "run.waiting", what="the nap")
    run_id = str(started["run_id"])
    release(root, CODE.format(quantity=2))
    check = ff("check", cwd=root)
    assert check.returncode == 1, describe(check)
    assert "recorded step 'Inventory.reserve'" in check.stdout and WHY in check.stdout, describe(check)
    with Live("resume", run_id, "--json", cwd=root) as resume:  # the nap ends: the replay meets the change
        held = resume.wait_event(lambda e: e["type"] == "run.waiting" and e.get("reason") == "code",
                                 what="the hold")
    assert WHY in held["message"], held
