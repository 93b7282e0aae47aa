"""The OpenAI-compatible provider (``/chat/completions``, ``/embeddings``: Ollama, vLLM, llama.cpp's
server, OpenAI itself), over a small `Transport` each host supplies (urllib in a thread locally,
``fetch`` in the Worker).

Request bodies and answer parsing live here once; streamed answers are OpenAI's server-sent events
(``data: {"choices": [{"delta": {"content": ...}}]}`` lines, then ``data: [DONE]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from .errors import AiUnavailable, classify
from .ports import Completion, Embedding, TokenSink

LineSink = Callable[[str], None]


class Transport(Protocol):
    """POST a JSON body. With ``on_line`` the answer body is handed over line by line as it arrives
    (an SSE stream) and the returned text may be empty; otherwise the whole body is returned."""

    async def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float,
                   on_line: LineSink | None = None) -> tuple[int, str]:
        """(HTTP status, body text). A connection that fails raises `AiUnavailable`."""


class OpenAiProvider:
    """`flareflow.ai.ports.Provider` for any OpenAI-compatible base URL (``http://host:port/v1``)."""

    name = "openai"

    def __init__(self, base_url: str, api_key: str | None, transport: Transport, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.transport = transport
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    async def _post(self, path: str, payload: dict[str, Any], on_line: LineSink | None = None) -> str:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        status, text = await self.transport.post(self.base_url + path, self._headers(), body, self.timeout, on_line)
        if status >= 400:
            raise classify(status, _detail(text), f"{self.base_url}{path} (model '{payload.get('model')}')")
        return text

    async def chat(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                   on_token: TokenSink | None) -> Completion:
        payload: dict[str, Any] = {"model": model, "messages": messages}
        if params.get("temperature") is not None:
            payload["temperature"] = params["temperature"]
        if params.get("max_tokens") is not None:
            payload["max_tokens"] = params["max_tokens"]
        if params.get("json"):
            payload["response_format"] = {"type": "json_object"}
        if on_token is None:
            data = _decode(await self._post("/chat/completions", payload), "chat completion")
            try:
                text = data["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise AiUnavailable("the AI provider's answer has no choices[0].message.content") from None
            if not isinstance(text, str):
                raise AiUnavailable("the AI provider's answer content is not text")
            usage = data.get("usage")
            return Completion(text, _count(usage, "prompt_tokens"), _count(usage, "completion_tokens"))
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        stream = SseChunks(on_token)
        await self._post("/chat/completions", payload, stream.line)
        return stream.result()

    async def embed(self, model: str, texts: list[str]) -> Embedding:
        data = _decode(await self._post("/embeddings", {"model": model, "input": texts}), "embedding")
        try:
            rows = sorted(data["data"], key=lambda r: int(r.get("index", 0)))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError):
            raise AiUnavailable("the AI provider's embedding answer has no data[].embedding vectors") from None
        if len(vectors) != len(texts):
            raise AiUnavailable(f"the AI provider returned {len(vectors)} vectors for {len(texts)} texts")
        return Embedding(vectors, _count(data.get("usage"), "prompt_tokens"))


class SseChunks:
    """Collects a streamed chat answer from its SSE lines, handing each delta to ``on_token``."""

    def __init__(self, on_token: TokenSink) -> None:
        self.on_token = on_token
        self.parts: list[str] = []
        self.usage: dict[str, Any] = {}
        self.done = False

    def line(self, line: str) -> None:
        line = line.strip()
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        chunk = _decode(data, "streamed chunk")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(piece, str) and piece:
                self.parts.append(piece)
                self.on_token(piece)

    def result(self) -> Completion:
        if not self.done and not self.parts:
            raise AiUnavailable("the AI provider's stream ended without an answer")
        return Completion("".join(self.parts), _count(self.usage, "prompt_tokens"),
                          _count(self.usage, "completion_tokens"))


def _decode(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise AiUnavailable(f"the AI provider's {what} is not JSON: {text[:120]!r}") from None
    if not isinstance(data, dict):
        raise AiUnavailable(f"the AI provider's {what} is not a JSON object")
    return data


def _detail(text: str) -> str:
    """What an error body says: OpenAI's ``{"error": {"message"}}``, or the text itself."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return text.strip()


def _count(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
