"""``serve --local`` names the AI routes in its banner when the project configures AI (and not
otherwise), so a user of ``--template ai`` sees where ``POST /api/workflow`` is."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import Live

from .project import write_project


def banner(root: Path) -> str:
    live = Live("serve", "--local", "--host", "127.0.0.1", "--port", "0", "--token", "t", cwd=root)
    try:
        live.wait_line(lambda line: "Ctrl-C stops" in line, 20, "the banner's API line")
        live.next_line(2)  # the line after it, if any
        return "".join(live.out)
    finally:
        live.kill()


def test_serve_banner_lists_the_ai_routes(tmp_path: Path) -> None:
    text = banner(write_project(tmp_path / "ai", "http://127.0.0.1:9/v1"))
    assert "AI: POST /api/workflow" in text and "GET /ai/calls" in text, text
    plain = tmp_path / "plain"
    (plain / "workflows").mkdir(parents=True)
    (plain / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n\n[tool.flareflow]\n')
    assert "/api/workflow" not in banner(plain)
