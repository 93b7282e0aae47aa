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


CHAINS = '''\
from typing import Any

from flareflow import Domain, Run, workflow


async def check(product: dict[str, Any]) -> dict[str, Any]:
    return {"sku": product["sku"]}


async def reserve(product: dict[str, Any], *, quantity: int) -> dict[str, Any]:
    return {"held": quantity}

Inventory = Domain("Inventory", check=check, reserve=reserve)


@workflow("order")
async def order(run: Run, order: dict[str, Any]) -> Any:
    first = await run.Inventory(order["product"]).check().reserve(quantity=1)
    if order.get("a"):
        return await run.Inventory(order["product"]).chek()
    if order.get("b"):
        return await run.domain("Inventory")(order["product"]).reserve(qty=3)
    return first
'''


def test_a_missing_method_or_keyword_of_a_domain_call_fails_validate(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\nversion = "0"\n\n[tool.flareflow]\n')
    (tmp_path / "workflows" / "shop.py").write_text(CHAINS)
    result = ff("validate", cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert ("workflows/shop.py:20 workflow 'order': Inventory has no method 'chek' (did you mean \"check\"?) "
            "(methods: check, reserve)") in result.stderr, describe(result)
    assert ("workflows/shop.py:22 workflow 'order': Inventory.reserve: unexpected keyword argument 'qty' "
            '(did you mean "quantity"?)') in result.stderr, describe(result)
    assert ":18 " not in result.stderr, describe(result)  # the correct chain is not reported


def test_a_misspelt_keyword_says_so_at_run_time_too(tmp_path: Path) -> None:
    """A call the check cannot see (a handle kept in a variable) names the misspelt keyword when it runs,
    not only the required one it leaves missing."""
    source = CHAINS.replace('run.domain("Inventory")(order["product"]).reserve(qty=3)',
                            'handle.reserve(qty=3)').replace(
        "    if order.get(\"b\"):", "    handle = run.Inventory(order[\"product\"])\n    if order.get(\"b\"):")
    source = source.replace('        return await run.Inventory(order["product"]).chek()\n',
                            '        return None\n')
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\nversion = "0"\n\n[tool.flareflow]\n')
    (tmp_path / "workflows" / "shop.py").write_text(source)
    assert ff("validate", cwd=tmp_path).returncode == 0
    ran = ff("run", "order", "--input", '{"product": {"sku": "A"}, "b": true}', cwd=tmp_path)
    assert ran.returncode == 1, describe(ran)
    assert "unexpected keyword argument 'qty' (did you mean \"quantity\"?)" in ran.stdout + ran.stderr, describe(ran)
