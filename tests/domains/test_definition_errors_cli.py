"""A domain whose method is not callable fails ``flareflow validate`` naming the
domain, the method and where it is defined (was: "a domain method must be callable, got int")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import describe, ff


@pytest.mark.parametrize(("method", "says"), [("5", "must be callable, got int"),
                                              ("'check'", "must be callable, got str")])
def test_a_bad_method_names_the_domain_method_and_place(tmp_path: Path, method: str, says: str) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\nversion = "0"\n\n[tool.flareflow]\n')
    (tmp_path / "workflows" / "shop.py").write_text(
        f"from flareflow import Domain, Method\n\nInventory = Domain('Inventory', check={method})\n")
    result = ff("validate", cwd=tmp_path)
    assert result.returncode != 0, describe(result)
    assert "Inventory.check at " in result.stderr and "shop.py:3" in result.stderr, describe(result)
    assert says in result.stderr, describe(result)


MISSPELT = '''\
from typing import Any

from flareflow import Domain, Run, workflow


async def check(product: dict[str, Any]) -> dict[str, Any]:
    return {"sku": product["sku"]}

Inventory = Domain("Inventory", check=check)


@workflow("order")
async def order(run: Run, order: dict[str, Any]) -> dict[str, Any]:
    stock = await run.Inventory(order["product"]).check()
    run.state["seen"] = run.id
    if order.get("again"):
        return await run.Inventroy(order["product"]).check()
    return stock
'''


def test_a_misspelt_domain_fails_validate_and_build_at_its_line(tmp_path: Path) -> None:
    """mypy accepts any ``run.NAME`` (domains are reached through ``__getattr__``), and a run fails only
    when it reaches the line; ``validate`` and ``build`` find it first, with a did-you-mean."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\nversion = "0"\n\n[tool.flareflow]\n')
    (tmp_path / "workflows" / "shop.py").write_text(MISSPELT)
    for command in ("validate", "build"):
        result = ff(command, cwd=tmp_path)
        assert result.returncode == 1, describe(result)
        assert ("workflows/shop.py:17 workflow 'order': run.Inventroy is neither an attribute of the run nor a "
                'domain (did you mean "Inventory"?)') in result.stderr, describe(result)
        assert "run.state" not in result.stderr and "run.id" not in result.stderr, describe(result)
    (tmp_path / "workflows" / "shop.py").write_text(MISSPELT.replace("Inventroy", "Inventory"))
    result = ff("validate", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
