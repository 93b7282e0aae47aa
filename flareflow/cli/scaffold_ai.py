"""``flareflow new --template ai``: the default scaffold plus an AI example (``workflows/assistant.py``,
an embedding-and-generate workflow, and ``tests/test_assistant.py``, its test with mocked model calls),
a ``[tool.flareflow.ai]`` table appended to its ``pyproject.toml`` and a README section. Files that
already existed are kept as they are."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

TEMPLATES = ("default", "ai")

#: The example a new project is tried with first: the AI template's own workflow (``hello`` needs no
#: model server, but it shows nothing of what the template is for).
_FIRST = {"ai": ("workflows/assistant.py", "flareflow run ask-docs --input '\"How do I retry a step?\"'   "
                 "# needs the model server at base_url; pytest runs without one")}


def next_command(template: str, written: list[str]) -> str:
    """What ``flareflow new`` says to run first: the template's example when it was written (a kept file
    of the same name may not define it), else ``hello``."""
    example, command = _FIRST.get(template, ("", ""))
    return command if example in written else "flareflow run hello"


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
