"""What ``flareflow build`` adds for AI steps: the ``[ai] binding = "AI"`` of the generated wrangler
config when a workflow uses ``run.ai`` (or ``[tool.flareflow.ai]`` is set), the ``FLAREFLOW_AI`` var
carrying that table to the Worker (`flareflow.durable_objects.ai_ports.settings_of`), and the import of the
built-in ``ai-prompt`` workflow (``POST /api/workflow``) in the generated entry."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .project import Project

#: A call of run.ai in a workflow's source (the parameter may have any name: ``r.ai.generate(``).
_USES_AI = re.compile(r"\.ai\.(generate|chat|embed)\s*\(")
AI_VAR = "FLAREFLOW_AI"


def uses_ai(project: Project) -> bool:
    """Whether the Worker needs the AI binding: AI is configured, or a workflow module calls run.ai."""
    if project.settings.ai is not None:
        return True
    for name in project.modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and _USES_AI.search(Path(file).read_text(encoding="utf-8", errors="replace")):
            return True
    return False


def worker_ai_vars(project: Project) -> dict[str, str]:
    """The Worker's ``[vars]``: the user's, plus ``FLAREFLOW_AI`` when ``[tool.flareflow.ai]`` is set."""
    out = dict(project.settings.worker.vars)
    if project.settings.ai is not None:
        out[AI_VAR] = json.dumps(project.settings.ai, separators=(",", ":"), sort_keys=True)
    return out


def ai_modules(project: Project) -> list[str]:
    """Modules the entry imports for AI: the built-in ``ai-prompt`` where AI is configured."""
    return ["flareflow.ai.builtin"] if project.settings.ai is not None else []


def override_warnings(path: Path, project: Project) -> list[str]:
    """What a wrangler config of the user's own lacks for AI steps: the ``AI`` binding (when a workflow
    calls run.ai) and the ``FLAREFLOW_AI`` var (when ``[tool.flareflow.ai]`` is set)."""
    if not uses_ai(project):
        return []
    import tomllib

    from .build import _strip_jsonc  # build imports this module

    text = path.read_text(encoding="utf-8")
    config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(_strip_jsonc(text))
    warnings = []
    ai = config.get("ai")
    if not isinstance(ai, dict) or ai.get("binding") != "AI":
        warnings.append(f'{path.name} lacks the Workers AI binding AI ([ai] binding = "AI"): a workflow uses run.ai')
    if project.settings.ai is not None and AI_VAR not in (config.get("vars") or {}):
        warnings.append(f"{path.name} lacks the var {AI_VAR} (the JSON of [tool.flareflow.ai], as the generated "
                        "config has it): the Worker falls back to run.ai's defaults")
    return warnings
