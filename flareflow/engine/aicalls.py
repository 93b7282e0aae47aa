"""The shape of ``run.ai``, so user code that calls it is type-checked (a misspelt method or option is
a ``mypy --strict`` error) while the engine still imports nothing of ``flareflow.ai``.

`flareflow.ai.steps.RunAi` is the one implementation; it satisfies this protocol structurally (a test
checks the signatures match). Results are ``Any``: text, or with ``schema=`` the parsed JSON value, or
with ``full=True`` the answer envelope.
"""

from __future__ import annotations

from typing import Any, Protocol

from .retry import Retry


class AiCalls(Protocol):
    """``run.ai``: model calls as durable steps (see `flareflow.ai.steps` for what each records)."""

    async def generate(self, prompt: str, *, system: str | None = None, model: str | None = None,
                       schema: dict[str, Any] | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, cache: bool | None = None, stream: bool = False,
                       name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """Text for ``prompt`` (with ``schema``: the parsed, validated JSON value)."""
        ...

    async def chat(self, messages: list[dict[str, Any]], *, system: str | None = None, model: str | None = None,
                   schema: dict[str, Any] | None = None, temperature: float | None = None,
                   max_tokens: int | None = None, cache: bool | None = None, stream: bool = False,
                   name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """The answer to a conversation (``[{"role", "content"}, ...]``), with `generate`'s options."""
        ...

    async def embed(self, text_or_texts: str | list[str], *, model: str | None = None, cache: bool | None = None,
                    name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """A vector for a text, or a list of vectors for a list of texts."""
        ...
