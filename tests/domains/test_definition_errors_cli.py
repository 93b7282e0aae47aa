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
