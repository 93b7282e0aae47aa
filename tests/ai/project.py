"""The small project the AI tests run: workflows that call ``run.ai`` the ways the issue names."""

from __future__ import annotations

from pathlib import Path

WORKFLOWS = '''\
from typing import Any

from flareflow import Retry, Run, workflow

FAST = Retry(limit=3, delay=0.05)


@workflow("twice")
async def twice(run: Run, prompt: str) -> dict[str, Any]:
    """The same call twice (the second is a cache hit), then once more without the cache."""
    first = await run.ai.generate(prompt, full=True)
    second = await run.ai.generate(prompt, full=True)
    third = await run.ai.generate(prompt, cache=False, full=True)
    return {"sources": [first["source"], second["source"], third["source"]], "text": first["value"]}


@workflow("one")
async def one(run: Run, prompt: str) -> Any:
    """One generate with a fast retry policy."""
    return await run.ai.generate(prompt, cache=False, retry=FAST)


@workflow("shaped")
async def shaped(run: Run, prompt: str) -> Any:
    """A schema-validated answer."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    return await run.ai.generate(prompt, schema=schema, cache=False, retry=FAST)


@workflow("slow-chain")
async def slow_chain(run: Run, prompt: str) -> Any:
    """A call, then a sleep (the process may be killed there), then the end."""
    text = await run.ai.generate(prompt, cache=False)
    await run.sleep("pause", "2s")
    return {"text": text}


@workflow("vectors")
async def vectors(run: Run, texts: list[str]) -> Any:
    """Embeddings of a list and of one text."""
    many = await run.ai.embed(texts)
    single = await run.ai.embed(texts[0])
    return {"many": many, "single": single}


@workflow("tuned")
async def tuned(run: Run, prompt: str) -> Any:
    """Settings from every layer: the call's temperature, a mapped model name."""
    plain = await run.ai.generate(prompt, cache=False)
    mapped = await run.ai.generate(prompt, cache=False, model="fast", temperature=0.9)
    return [plain, mapped]


@workflow("fanned")
async def fanned(run: Run, prompts: list[str]) -> Any:
    """Calls side by side in run.parallel (each in its own key scope)."""
    return await run.parallel(*(run.ai.generate(p, cache=False) for p in prompts))


@workflow("streamed")
async def streamed(run: Run, prompt: str) -> Any:
    """A streamed answer."""
    return await run.ai.generate(prompt, stream=True, cache=False)


@workflow("streamed-cached")
async def streamed_cached(run: Run, prompt: str) -> Any:
    """A streamed answer that may come from the cache."""
    return await run.ai.generate(prompt, stream=True)
'''


def write_project(root: Path, base_url: str | None, *, extra: str = "") -> Path:
    """The project at ``root``; ``base_url`` None: an AI table without a provider."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "__init__.py").write_text("")
    (root / "workflows" / "ai_flows.py").write_text(WORKFLOWS)
    url = f'base_url = "{base_url}"\nworker_base_url = "{base_url}"\n' if base_url else ""
    (root / "pyproject.toml").write_text(
        '[project]\nname = "ai-demo"\nversion = "0.1.0"\n\n'
        f'[tool.flareflow.ai]\n{url}model = "stand-in-model"\nembed_model = "stand-in-embed"\n{extra}')
    return root
