"""``flareflow new --template ai``: the default scaffold plus an AI example (``workflows/assistant.py``,
an embedding-and-generate workflow, and ``tests/test_assistant.py``, its test with mocked model calls),
a ``[tool.flareflow.ai]`` table appended to its ``pyproject.toml`` and a README section. Files that
already existed are kept as they are."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

TEMPLATES = ("default", "ai")


def apply_ai_template(target: Path, written: list[str], skipped: list[str]) -> None:
    """Add the AI example to the project just scaffolded in ``target`` (``written``: what ``new`` wrote)."""
    source = resources.files("flareflow.templates").joinpath("ai")
    for folder, name in (("workflows", "assistant.py"), ("tests", "test_assistant.py")):
        example = target / folder / name
        if example.exists():
            skipped.append(f"{folder}/{name}")
        else:
            example.parent.mkdir(parents=True, exist_ok=True)
            example.write_text(source.joinpath(folder, name).read_text(encoding="utf-8"), encoding="utf-8")
            written.append(f"{folder}/{name}")
    for name, snippet in (("pyproject.toml", "ai.toml"), ("README.md", "README-ai.md")):
        if name in written:  # a file the user had is never changed
            with (target / name).open("a", encoding="utf-8") as out:
                out.write(source.joinpath(snippet).read_text(encoding="utf-8"))
