"""The ports `run.ai` works through; each host supplies them (`AiHost`).

- **Provider**: one chat completion or one embedding request (an OpenAI-compatible server over HTTP,
  or the Workers AI binding).
- **Kv**: the answer cache and the ``config:ai`` document (KV with TTL on Cloudflare, files in the
  state directory locally).
- **CallLog**: one row per call in the index (D1 / the local ``index.db``), `flareflow.migrations.ai_calls`.

Everything is async: the Worker's bindings are; the local host runs blocking I/O in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Receives each piece of text as a streamed answer arrives.
TokenSink = Callable[[str], None]


@dataclass
class Completion:
    """A chat answer: its text and the token counts the provider reported (None: not reported)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Embedding:
    """Vectors, one per input text, with the token count the provider reported."""

    vectors: list[list[float]]
    prompt_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """One model server. ``name`` goes into the cache key and the call log (``openai``, ``workers-ai``)."""

    name: str

    async def chat(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                   on_token: TokenSink | None) -> Completion:
        """One completion; ``params``: ``temperature``, ``max_tokens``, ``json`` (ask for a JSON answer).
        With ``on_token`` the answer is streamed and each piece handed to it as it arrives."""

    async def embed(self, model: str, texts: list[str]) -> Embedding:
        """Vectors for ``texts``."""


class Kv(Protocol):
    """A key-value store with expiry."""

    async def get(self, key: str) -> str | None:
        """The text under ``key``, or None (absent or expired)."""

    async def put(self, key: str, text: str, ttl: int | None = None) -> None:
        """Store ``text`` under ``key`` for ``ttl`` seconds (None: for good)."""


class CallLog(Protocol):
    """Where every call is logged (`flareflow.migrations.ai_calls`)."""

    async def record(self, row: dict[str, Any]) -> None:
        """Append one call (the columns of `flareflow.migrations.ai_calls.COLUMNS`)."""
