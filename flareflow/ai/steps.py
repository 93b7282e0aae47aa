"""`run.ai`: model calls as durable steps, host-agnostic (it runs inside the Worker too).

Each call is one `Run.step` (named ``ai.generate``, ``ai.chat`` or ``ai.embed`` unless ``name=`` says
otherwise), so it is recorded once and replayed without a request, and retried with the step's policy
(`AI_RETRY` by default): a rate limit, a 5xx, a dropped connection or a malformed body is retried with
backoff; any other 4xx, a missing provider and answers that keep failing their schema fail at once
(`flareflow.ai.errors`). Built on `Run.step` rather than inside the engine, so the engine imports
nothing of ours; the engine only hands ``run.ai`` to the host's factory (`flareflow.ai.host.AiHost`).

What a step records is an answer envelope, ``{"value", "source": "ai" | "cache", "provider", "model",
"usage"}``; its ``step.completed`` event carries it (so it says ``source: "cache"`` for a cache hit),
and the call returns ``value`` (``full=True``: the envelope). A cache hit is still a recorded step, so
a replay returns the same answer even after the cache entry expired.

Settings come in layers (`flareflow.ai.config`): defaults < ``[tool.flareflow.ai]`` < the ``config:ai``
document in the host's key-value store, read once per activation (one `RunAi` per activation) < the
call's own arguments.

``stream=True`` hands each piece of the answer to the host's stream sink as it arrives (``ai.token``
frames, `flareflow.ai.frames`; a cached answer as one piece); the step still records the whole answer
once. A recorded result that is not an envelope (a test's mock of the step) is the answer itself.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..engine.errors import InvalidInput
from ..engine.retry import Retry
from ..engine.schema import SchemaError, check_schema, validate
from .config import (
    CALL_LAYER,
    CONFIG_KEY,
    DEFAULT_LAYER,
    PROJECT_LAYER,
    URL_SETTING,
    check_config,
    layered,
    origins,
    resolve_model,
    setting_origin,
)
from .errors import AiNotConfigured, AiRequestRefused, AiSchemaError, AiUnreachable
from .keys import CACHE_PREFIX, call_hash
from .openai import OpenAiProvider
from .ports import Completion, Embedding, Provider, TokenSink

if TYPE_CHECKING:
    from ..engine.run import Run
    from .host import AiHost

log = logging.getLogger("flareflow.ai")

#: Retry policy of an AI step that names none: five attempts, 2 s doubling up to a minute apart.
AI_RETRY = Retry(limit=5, delay=2.0, backoff="exponential", max_delay=60.0)

_JSON_INSTRUCTION = ("Answer with JSON only (no prose, no code fences) that satisfies this JSON schema:\n{schema}")
_REASK = ("That answer is not valid: {problem}. Answer again with JSON only that satisfies the schema.")


class RunAi:
    """``run.ai`` of one activation: `generate`, `chat` and `embed` over the host's `AiHost` ports."""

    def __init__(self, run: Run, host: AiHost) -> None:
        self.run = run
        self.host = host
        self._config: dict[str, Any] | None = None
        self._origins: dict[str, str] = {}

    # -- the calls -------------------------------------------------------------------------
    async def generate(self, prompt: str, *, system: str | None = None, model: str | None = None,
                       schema: dict[str, Any] | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, cache: bool | None = None, stream: bool = False,
                       name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """Text for ``prompt`` (with ``schema``: the parsed, validated JSON value). ``stream=True``
        sends the text to the run's live clients as it is written (``ai.token`` frames)."""
        if not isinstance(prompt, str) or not prompt:
            raise InvalidInput("run.ai.generate needs a non-empty prompt string", "prompt")
        messages = [{"role": "user", "content": prompt}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": str(system)})
        return await self._chat_step(name or "ai.generate", messages, model, schema, temperature, max_tokens,
                                     cache, stream, retry, full)

    async def chat(self, messages: list[dict[str, Any]], *, system: str | None = None, model: str | None = None,
                   schema: dict[str, Any] | None = None, temperature: float | None = None,
                   max_tokens: int | None = None, cache: bool | None = None, stream: bool = False,
                   name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """The answer to a conversation (``[{"role", "content"}, ...]``), with `generate`'s options."""
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise InvalidInput("run.ai.chat needs a list of {\"role\", \"content\"} messages", "messages")
        chosen = [{"role": m["role"], "content": m["content"]} for m in messages]
        if system is not None:
            chosen.insert(0, {"role": "system", "content": str(system)})
        return await self._chat_step(name or "ai.chat", chosen, model, schema, temperature, max_tokens,
                                     cache, stream, retry, full)

    async def embed(self, text_or_texts: str | list[str], *, model: str | None = None, cache: bool | None = None,
                    name: str | None = None, retry: Retry | None = None, full: bool = False) -> Any:
        """A vector for a text, or a list of vectors for a list of texts."""
        single = isinstance(text_or_texts, str)
        texts = [text_or_texts] if isinstance(text_or_texts, str) else text_or_texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("run.ai.embed needs a string or a non-empty list of strings", "text")
        spec = {"kind": "embed", "texts": list(texts), "model": model, "cache": cache}
        cell: dict[str, str] = {}
        pending = self.run.step(name or "ai.embed", self._embed_attempt, spec, cell, retry=retry or AI_RETRY)
        cell["step"] = str(getattr(pending, "key", name or "ai.embed"))
        envelope = _envelope(await pending)
        if full:
            return envelope
        vectors = envelope["value"]
        if single and envelope["source"] == "mock" and isinstance(vectors, list) and vectors \
                and not isinstance(vectors[0], list):
            return vectors  # a test mocked the one vector this call returns, not a list of one
        return vectors[0] if single else vectors

    async def _chat_step(self, name: str, messages: list[dict[str, Any]], model: str | None,
                         schema: dict[str, Any] | None, temperature: float | None, max_tokens: int | None,
                         cache: bool | None, stream: bool, retry: Retry | None, full: bool) -> Any:
        if schema is not None:
            check_schema(schema)
        # the call's own layer, checked like the others (run.ai.temperature: must be a number >= 0)
        check_config({k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None},
                     "run.ai")
        spec = {"kind": "chat", "messages": messages, "model": model, "schema": schema,
                "temperature": temperature, "max_tokens": max_tokens, "cache": cache, "stream": bool(stream)}
        cell: dict[str, str] = {}
        pending = self.run.step(name, self._chat_attempt, spec, cell, retry=retry or AI_RETRY)
        cell["step"] = str(getattr(pending, "key", name))
        envelope = _envelope(await pending)
        if envelope["source"] == "mock" and schema is not None:
            try:  # a test's mocked answer must be one the model's could be, or the test proves nothing
                validate(envelope["value"], schema)
            except SchemaError as exc:
                raise AiSchemaError(f"{cell['step']}: the mocked answer does not satisfy the call's schema: "
                                    f"{exc} (mock_step_result gives the parsed value a real answer would "
                                    "have)") from None
        return envelope if full else envelope["value"]

    # -- configuration ---------------------------------------------------------------------
    async def config(self) -> dict[str, Any]:
        """The layered settings of this activation (the ``config:ai`` document read once)."""
        if self._config is None:
            document = None
            if self.host.kv is not None:
                text = await self.host.kv.get(CONFIG_KEY)
                if text:
                    try:
                        document = check_config(json.loads(text), CONFIG_KEY)
                    except ValueError:
                        raise InvalidInput(f"{CONFIG_KEY}: the stored document is not JSON", CONFIG_KEY) from None
            self._config = layered(self.host.settings, document)
            self._origins = origins((PROJECT_LAYER, self.host.settings), (CONFIG_KEY, document))
        return self._config

    # -- one attempt of a step -------------------------------------------------------------
    async def _chat_attempt(self, spec: dict[str, Any], cell: dict[str, str]) -> dict[str, Any]:
        config = await self.config()
        provider = self.host.provider(config)
        model = (resolve_model(config, spec["model"], self.host.name)
                 or self.host.default_model(provider.name, embed=False))
        if model is None:
            raise AiNotConfigured(f"run.ai: no model given and no default set (tool.flareflow.ai.model) "
                                  f"for provider '{provider.name}'")
        temperature = spec["temperature"] if spec["temperature"] is not None else config["temperature"]
        max_tokens = spec["max_tokens"] if spec["max_tokens"] is not None else config["max_tokens"]
        schema = spec["schema"]
        params = {"temperature": temperature, "max_tokens": max_tokens, "schema": schema}
        digest = call_hash(provider.name, model, "chat", spec["messages"], params)
        use_cache = (spec["cache"] if spec["cache"] is not None else config["cache"]) and self.host.kv is not None
        step = cell.get("step", "")
        started = time.perf_counter()
        row = {"run_id": self.run.id, "step": step, "kind": "chat", "provider": provider.name, "model": model,
               "prompt_hash": digest}
        if use_cache:
            hit = await self._cached(digest, schema)
            if hit is not None:
                await self._log(row, started, hit.get("usage") or {}, cached=True)
                if spec["stream"] and self.host.stream is not None:  # a cached answer arrives in one piece
                    value = hit["value"]
                    self.host.stream(self.run.id, step, value if isinstance(value, str) else json.dumps(value))
                return {**hit, "source": "cache"}
        sink: TokenSink | None = None
        if spec["stream"] and self.host.stream is not None:
            publish = self.host.stream

            def sink(piece: str) -> None:
                publish(self.run.id, step, piece)

        try:
            value, completion = await self._ask(provider, model, spec["messages"], params, schema, sink)
        except Exception as exc:
            blamed = self._blamed(exc, provider, spec["model"], model, embed=False)
            await self._log(row, started, {}, cached=False, error=f"{type(blamed).__name__}: {blamed}")
            if blamed is exc:
                raise
            raise blamed from None
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
        envelope = {"value": value, "source": "ai", "provider": provider.name, "model": model, "usage": usage}
        await self._log(row, started, usage, cached=False)
        if use_cache:
            await self._store(digest, envelope, config)
        return envelope

    async def _ask(self, provider: Any, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                   schema: dict[str, Any] | None, sink: TokenSink | None) -> tuple[Any, Completion]:
        """One answer; with ``schema``, asked for JSON and re-asked (``schema_retries`` times at most)
        while the answer fails it, then `AiSchemaError` quoting the last failure."""
        request = {"temperature": params["temperature"], "max_tokens": params["max_tokens"]}
        if schema is None:
            completion = await provider.chat(model, messages, request, sink)
            return completion.text, completion
        config = await self.config()
        instruction = _JSON_INSTRUCTION.format(schema=json.dumps(schema, separators=(",", ":")))
        conversation = [{"role": "system", "content": instruction}, *messages]
        problem = ""
        for _ in range(int(config["schema_retries"]) + 1):
            completion = await provider.chat(model, conversation, {**request, "json": True}, sink)
            try:
                value = json.loads(_unfenced(completion.text))
                validate(value, schema)
                return value, completion
            except ValueError as exc:  # SchemaError is a ValueError, so is a JSON decode error
                problem = str(exc) if isinstance(exc, SchemaError) else f"not JSON ({exc})"
            conversation = [*conversation, {"role": "assistant", "content": completion.text},
                            {"role": "user", "content": _REASK.format(problem=problem)}]
        raise AiSchemaError(f"the model's answer failed its schema {int(config['schema_retries']) + 1} times; "
                            f"last: {problem}")

    async def _embed_attempt(self, spec: dict[str, Any], cell: dict[str, str]) -> dict[str, Any]:
        config = await self.config()
        provider = self.host.provider(config)
        model = (resolve_model(config, spec["model"], self.host.name, embed=True)
                 or self.host.default_model(provider.name, embed=True))
        if model is None:
            raise AiNotConfigured("run.ai.embed: no model given and no default set (tool.flareflow.ai.embed_model) "
                                  f"for provider '{provider.name}'")
        digest = call_hash(provider.name, model, "embed", spec["texts"], {})
        use_cache = (spec["cache"] if spec["cache"] is not None else config["cache"]) and self.host.kv is not None
        started = time.perf_counter()
        row = {"run_id": self.run.id, "step": cell.get("step", ""), "kind": "embed", "provider": provider.name,
               "model": model, "prompt_hash": digest}
        if use_cache:
            hit = await self._cached(digest, None)
            if hit is not None:
                await self._log(row, started, hit.get("usage") or {}, cached=True)
                return {**hit, "source": "cache"}
        try:
            result: Embedding = await provider.embed(model, spec["texts"])
        except Exception as exc:
            blamed = self._blamed(exc, provider, spec["model"], model, embed=True)
            await self._log(row, started, {}, cached=False, error=f"{type(blamed).__name__}: {blamed}")
            if blamed is exc:
                raise
            raise blamed from None
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": None}
        envelope = {"value": result.vectors, "source": "ai", "provider": provider.name, "model": model, "usage": usage}
        await self._log(row, started, usage, cached=False)
        if use_cache:
            await self._store(digest, envelope, config)
        return envelope

    def _blamed(self, exc: Exception, provider: Provider, asked: str | None, model: str, *,
                embed: bool) -> Exception:
        """``exc`` saying which settings it concerns and the layer each came from, when the provider was
        unreachable or refused: the same ``base_url`` may be in pyproject.toml and, overriding it, in the
        ``config:ai`` document, and only the one in effect is worth fixing. Other errors as they are."""
        if not isinstance(exc, (AiUnreachable, AiRequestRefused)):
            return exc
        url_key = URL_SETTING.get(self.host.name) if provider.name == OpenAiProvider.name else None
        address = setting_origin(url_key, self._origins.get(url_key, DEFAULT_LAYER)) if url_key else None
        if isinstance(exc, AiUnreachable):
            if address is None:
                return exc
            return AiUnreachable(f"{exc} (is the server running? its address is {address})", exc.status)
        parts = [f"the address is {address}"] if address else []
        model_key = "embed_model" if embed else "model"
        layer = CALL_LAYER if asked is not None else self._origins.get(model_key, DEFAULT_LAYER)
        chosen = asked if asked is not None else self.config_value(model_key)
        if layer == DEFAULT_LAYER or chosen is None:
            parts.append(f"the model '{model}' is the provider's default")
        else:
            mapped = f", which models maps to '{model}'" if str(chosen) != model else ""
            parts.append(f"the model '{chosen}' is {setting_origin('model' if asked else model_key, layer)}{mapped}")
        key_env = self.config_value("api_key_env")
        if exc.status in (401, 403) and key_env:
            parts.append(f"the API key is ${key_env}, named by "
                         f"{setting_origin('api_key_env', self._origins.get('api_key_env', DEFAULT_LAYER))}")
        return AiRequestRefused(f"{exc} ({'; '.join(parts)})", exc.status)

    def config_value(self, key: str) -> Any:
        """A setting of this activation's layered config (`config` has been read)."""
        return (self._config or {}).get(key)

    # -- cache and log ---------------------------------------------------------------------
    async def _cached(self, digest: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        assert self.host.kv is not None
        text = await self.host.kv.get(CACHE_PREFIX + digest)
        if not text:
            return None
        try:
            hit = json.loads(text)
            if schema is not None:
                validate(hit["value"], schema)
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry or one a schema change makes wrong: asked again
        return hit if isinstance(hit, dict) and "value" in hit else None

    async def _store(self, digest: str, envelope: dict[str, Any], config: dict[str, Any]) -> None:
        assert self.host.kv is not None
        text = json.dumps(envelope, separators=(",", ":"))
        try:
            await self.host.kv.put(CACHE_PREFIX + digest, text, int(config["cache_ttl"]))
        except Exception as exc:  # the answer is paid for and recorded; a cache that refuses is no failure
            log.warning("run.ai: the cache refused an answer: %s", exc)

    async def _log(self, row: dict[str, Any], started: float, usage: dict[str, Any], *, cached: bool,
                   error: str | None = None) -> None:
        if self.host.log is None:
            return
        full = {**row, "at": self.host.now(), "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"), "cached": cached, "error": error,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
        try:
            await self.host.log.record(full)
        except Exception as exc:  # the call log must never fail a call
            log.warning("run.ai: the call log refused a row: %s", exc)


def _envelope(recorded: Any) -> dict[str, Any]:
    """A step's recorded answer envelope; a bare value (a test's ``mock_step_result("ai.generate",
    "hi")``) is the answer itself, with ``source: "mock"``."""
    if isinstance(recorded, dict) and "value" in recorded and "source" in recorded:
        return recorded
    return {"value": recorded, "source": "mock", "provider": None, "model": None, "usage": {}}


def _unfenced(text: str) -> str:
    """A JSON answer without the Markdown code fence some models wrap it in."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1] if "\n" in stripped else stripped[3:]
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped.strip()

