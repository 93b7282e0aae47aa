"""A project discovered again in one process (``serve --local`` and ``resume`` re-import workflows when the
project's files change) keeps its domains working: an edited module replaces its domains, and a domain
moved to another module is no clash with its old place."""

from __future__ import annotations

import sys
from pathlib import Path

from flareflow.cli.project import discover_workflows, load_project
from flareflow.engine.domains import default_domains

FLOW = '''\
from flareflow import Run, workflow
{domain}

@workflow("moving")
async def moving(run: Run) -> object:
    return await run.Moved({{}}).ping()
'''
DOMAIN = '''\
from flareflow import Domain

def ping(context):
    return "pong"

Moved = Domain("Moved", ping=ping)
'''


def test_an_edited_or_moved_domain_is_defined_again_without_a_clash(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "moving"\n\n[tool.flareflow]\n'
                                             'workflows = ["workflows"]\n', encoding="utf-8")
    flow = tmp_path / "workflows" / "moving.py"
    flow.write_text(FLOW.format(domain=DOMAIN), encoding="utf-8")
    try:
        project = load_project(tmp_path)
        assert default_domains.get("Moved") is not None
        assert default_domains.get("Moved").module == "workflows.moving"
        flow.write_text("\n\n" + FLOW.format(domain=DOMAIN), encoding="utf-8")  # edited: lines move
        assert discover_workflows(project, tolerant=True) == []
        (tmp_path / "workflows" / "domains.py").write_text(DOMAIN, encoding="utf-8")  # moved elsewhere
        flow.write_text(FLOW.format(domain="from workflows.domains import Moved"), encoding="utf-8")
        assert discover_workflows(project, tolerant=True) == []
        assert default_domains.get("Moved").module == "workflows.domains"
    finally:
        default_domains.forget("Moved")
        for name in [m for m in sys.modules if m == "workflows" or m.startswith("workflows.")]:
            del sys.modules[name]
        sys.path[:] = [p for p in sys.path if p != str(tmp_path)]
