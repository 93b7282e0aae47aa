"""The built-in ``ai-prompt`` workflow behind ``POST /api/workflow {"prompt", "model"?}``.

It is the design's AI endpoint as a durable run: the layered config (``config:ai`` read once), the
cache, the model call and the call log are `run.ai.generate`'s; the run's output is what the endpoint
answers, ``{"result", "source": "ai" | "cache", "model"}`` (the router adds ``run_id``). Hosts register it
only in projects that configure ``[tool.flareflow.ai]`` (`register`), so other projects' manifests
do not change.
"""

from __future__ import annotations

from typing import Any, Final

from ..engine.errors import InvalidInput
from ..engine.registry import Registry

AI_PROMPT: Final = "ai-prompt"
MAX_PROMPT: Final = 100_000


async def ai_prompt(run: Any, input: dict[str, Any]) -> dict[str, Any]:
    """Answer one prompt with the configured model (cached for the configured TTL; logged)."""
    if not isinstance(input, dict) or not isinstance(input.get("prompt"), str) or not input["prompt"].strip():
        raise InvalidInput("'prompt' must be a non-empty string", "prompt")
    model = input.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidInput("'model' must be a non-empty string", "model")
    answer = await run.ai.generate(input["prompt"], model=model, name="generate", full=True)
    return {"result": answer["value"], "source": answer["source"], "model": answer["model"]}


def register(registry: Registry) -> None:
    """Add ``ai-prompt`` to ``registry`` (again after a re-discovery: the same definition is no duplicate)."""
    registry.register(ai_prompt, AI_PROMPT, description="Answer a prompt with the configured model "
                      "(POST /api/workflow): cache, config, generate, log.")
