"""The Worker's AI ports: the Workers AI binding (``AI``), an OpenAI-compatible server over ``fetch``
(when ``tool.flareflow.ai.worker_base_url`` is set: it wins over the binding; ``base_url`` is the
local runtime's and is not used here), the answer cache and the
``config:ai`` document in KV (``CACHE``, with TTL), and the call log in the D1 index (``INDEX``).

The project's ``[tool.flareflow.ai]`` table reaches the Worker as the ``FLAREFLOW_AI`` var (JSON), which
``flareflow build`` writes. Imported only inside a Worker (``js``, ``pyodide``). It lives with the
Durable Object's shell, not in `flareflow.ai`, so ``ai`` stays host-agnostic and imports one way
(``ai`` -> ``engine``, ``migrations``; the Durable Object builds on ``ai``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import js

from ..ai.config import WORKERS_AI_EMBED_MODEL, WORKERS_AI_MODEL
from ..ai.errors import AiNotConfigured, AiUnavailable, AiUnreachable, classify_binding_error
from ..ai.host import AiHost, StreamSink
from ..ai.openai import LineSink, OpenAiProvider
from ..ai.ports import Completion, Embedding, Provider, TokenSink
from ..migrations.ai_calls import INSERT, insert_params
from .jsglue import js_object, js_param, jsnull, to_python


def _present(value: Any) -> bool:
    return value is not None and value is not jsnull


class FetchTransport:
    """`flareflow.ai.openai.Transport` over the Worker's ``fetch``."""

    async def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float,
                   on_line: LineSink | None = None) -> tuple[int, str]:
        init = js_object({"method": "POST", "headers": js_object(headers), "body": body.decode("utf-8")})
        try:
            response = await js.fetch(url, init)
            status = int(response.status)
            if on_line is not None and status < 400 and _present(response.body):
                await _read_lines(response.body, on_line)  # each line as its chunk arrives
                return status, ""
            return status, str(await response.text())
        except AiUnavailable:
            raise
        except Exception as exc:  # a JS network error
            raise AiUnreachable(f"AI provider {url} unreachable: {exc}") from None  # run.ai names the setting


async def _read_lines(body: Any, on_line: LineSink) -> None:
    reader = body.getReader()
    decoder = js.TextDecoder.new()
    buffer = ""
    while True:
        chunk = await reader.read()
        if chunk.done:
            break
        buffer += str(decoder.decode(chunk.value, js_object({"stream": True})))
        *lines, buffer = buffer.split("\n")
        for line in lines:
            on_line(line)
    if buffer:
        on_line(buffer)


class WorkersAiProvider:
    """`flareflow.ai.ports.Provider` on the Workers AI binding: ``await AI.run(model, inputs)``."""

    name = "workers-ai"

    def __init__(self, binding: Any, gateway: str | None = None) -> None:
        self.binding = binding
        #: An AI Gateway id: every call goes through it (``run(model, inputs, {gateway: {id}})``).
        self.gateway = gateway

    async def _run(self, model: str, inputs: dict[str, Any]) -> Any:
        """The binding's answer (a JS ``ReadableStream`` as it is, for ``stream: true``; else as Python)."""
        try:
            if self.gateway:
                answer = await self.binding.run(model, js_object(inputs),
                                                js_object({"gateway": js_object({"id": self.gateway})}))
            else:
                answer = await self.binding.run(model, js_object(inputs))
            return answer if inputs.get("stream") else to_python(answer)
        except Exception as exc:
            raise classify_binding_error(str(exc)) from None

    async def chat(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                   on_token: TokenSink | None) -> Completion:
        inputs: dict[str, Any] = {"messages": messages}
        if params.get("temperature") is not None:
            inputs["temperature"] = params["temperature"]
        if params.get("max_tokens") is not None:
            inputs["max_tokens"] = params["max_tokens"]
        if params.get("json"):
            inputs["response_format"] = {"type": "json_object"}
        if on_token is not None:
            return await self._streamed(model, {**inputs, "stream": True}, on_token)
        result = await self._run(model, inputs)
        text = result.get("response") if isinstance(result, dict) else None
        if isinstance(text, (dict, list)):  # a JSON-mode answer some models hand back parsed
            text = json.dumps(text)
        if not isinstance(text, str):
            raise AiUnavailable("Workers AI's answer has no 'response' text")
        usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
        return Completion(text, _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))

    async def _streamed(self, model: str, inputs: dict[str, Any], on_token: TokenSink) -> Completion:
        """``stream: true``: Workers AI's server-sent events, ``data: {"response": piece}`` (a last one
        may carry ``usage``), then ``data: [DONE]``; each piece goes to ``on_token`` as it arrives."""
        stream = await self._run(model, inputs)
        parts: list[str] = []
        usage: dict[str, Any] = {}

        def line(text: str) -> None:
            text = text.strip()
            data = text[5:].strip() if text.startswith("data:") else ""
            if not data or data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise AiUnavailable(f"Workers AI's streamed chunk is not JSON: {data[:120]!r}") from None
            piece = chunk.get("response") if isinstance(chunk, dict) else None
            if isinstance(piece, str) and piece:
                parts.append(piece)
                on_token(piece)
            if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                usage.update(chunk["usage"])

        await _read_lines(stream, line)
        return Completion("".join(parts), _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))

    async def embed(self, model: str, texts: list[str]) -> Embedding:
        result = await self._run(model, {"text": texts})
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise AiUnavailable("Workers AI's embedding answer has no 'data' vectors for every text")
        return Embedding([[float(x) for x in row] for row in data])


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class KvStore:
    """`flareflow.ai.ports.Kv` on a KV namespace (``expirationTtl``; KV's minimum is 60 s)."""

    def __init__(self, namespace: Any) -> None:
        self.namespace = namespace

    async def get(self, key: str) -> str | None:
        found = await self.namespace.get(key)
        return str(found) if _present(found) else None

    async def put(self, key: str, text: str, ttl: int | None = None) -> None:
        options = {} if ttl is None else {"expirationTtl": max(60, int(ttl))}
        await self.namespace.put(key, text, js_object(options))


class D1CallLog:
    """`flareflow.ai.ports.CallLog` in the D1 index (the same table and statement as locally)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def record(self, row: dict[str, Any]) -> None:
        await self.db.prepare(INSERT).bind(*[js_param(p) for p in insert_params(row)]).run()


def settings_of(env: Any) -> dict[str, Any] | None:
    """``[tool.flareflow.ai]`` as the build wrote it into the ``FLAREFLOW_AI`` var (None: not set)."""
    raw = getattr(env, "FLAREFLOW_AI", None)
    if not _present(raw) or not str(raw).strip():
        return None
    value = json.loads(str(raw))
    return value if isinstance(value, dict) else None


def cloudflare_ai_host(env: Any, now: Callable[[], float], stream: StreamSink | None = None) -> AiHost:
    """The Worker's `AiHost` over the raw bindings ``env``."""
    binding = getattr(env, "AI", None)
    kv = getattr(env, "CACHE", None)
    index = getattr(env, "INDEX", None)
    transport = FetchTransport()

    def providers(config: dict[str, Any]) -> Provider:
        if config.get("worker_base_url"):
            key = None
            if config.get("api_key_env"):
                found = getattr(env, str(config["api_key_env"]), None)
                if not _present(found) or not str(found):
                    raise AiNotConfigured(f"run.ai: the secret {config['api_key_env']} "
                                          "(tool.flareflow.ai.api_key_env) is not set on the Worker: list it in "
                                          "tool.flareflow.worker.secrets and run wrangler secret put "
                                          f"{config['api_key_env']}")
                key = str(found)
            return OpenAiProvider(str(config["worker_base_url"]), key, transport, float(config.get("timeout") or 120.0))
        if _present(binding):
            return WorkersAiProvider(binding, config.get("gateway"))
        raise AiNotConfigured("run.ai: no AI provider on the Worker; add the Workers AI binding ([ai] binding = "
                              "\"AI\": flareflow build adds it when a workflow uses run.ai) or set "
                              "tool.flareflow.ai.worker_base_url")

    def defaults(provider: str, embed: bool) -> str | None:  # Workers AI's own; none for another server
        if provider != WorkersAiProvider.name:
            return None
        return WORKERS_AI_EMBED_MODEL if embed else WORKERS_AI_MODEL

    return AiHost("cloudflare", settings_of(env), providers=providers,
                  kv=KvStore(kv) if _present(kv) else None, log=D1CallLog(index) if _present(index) else None,
                  now=now, stream=stream, defaults=defaults)
