"""``flareflow runs show`` names a domain call's step by its path (``Inventory.check``, ``Inventory.check #2``
for a repeat of the very same call), not by its hashed key; plain steps keep their keys (``restart --from``
takes them)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import describe, ff

SHOP = '''
from flareflow import Domain, Run, workflow


def check(product):
    return {"sku": product["sku"], "in_stock": True}


def add(a, b):
    return a + b


Inventory = Domain("Inventory", check=check)


@workflow("shop")
async def shop(run: Run) -> int:
    await run.Inventory({"sku": "A"}).check()
    await run.Inventory({"sku": "A"}).check()
    return await run.step("total", add, 1, 2)
'''


def test_runs_show_names_domain_steps_by_path(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\nversion = "0"\n\n[tool.flareflow]\n')
    (tmp_path / "workflows" / "shop.py").write_text(SHOP)
    ran = ff("run", "shop", "--json", cwd=tmp_path)
    assert ran.returncode == 0, describe(ran)
    run_id = json.loads(ran.stdout.splitlines()[0])["run_id"]
    shown = ff("runs", "show", run_id, cwd=tmp_path)
    assert shown.returncode == 0, describe(shown)
    rows = [line.split()[:2] for line in shown.stdout.splitlines() if line.strip().startswith(("Inventory", "total"))]
    assert rows == [["Inventory.check", "step"], ["Inventory.check", "#2"], ["total#1", "step"]], shown.stdout
    assert "@" not in shown.stdout.split("events (")[0], shown.stdout  # the hash stays in --json and the events
